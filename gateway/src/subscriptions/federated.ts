/**
 * Federated subscriptions on @apollo/gateway's own planner and executor, which plan them but refuse to run
 * them. A subscription's plan is `SubscriptionNode { primary, rest }`: `primary` is the subscription sent to
 * the subgraph owning the root field; for each of its events, `rest` fetches what other subgraphs own. Each
 * event runs as the plan `Sequence [primary, rest]` through `executeQueryPlan`, with the primary fetch
 * answered by the event itself — so the event's shape, entity fetches, errors and nulls are exactly what the
 * same selection gets in a query.
 */
import { buildOperationContext, executeQueryPlan, type GraphQLDataSource } from '@apollo/gateway';
import { operationFromDocument, Supergraph, type Schema } from '@apollo/federation-internals';
import { QueryPlanner, type FetchNode, type QueryPlan, type SubscriptionNode } from '@apollo/query-planner';
import type { ExecutionResult, GraphQLSchema } from 'graphql';
import type { DocumentNode } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { Principal } from '@jarvis/platform/contracts';
import type { Logger } from '@jarvis/platform/logger';
import { mapStream } from '@jarvis/platform/streams';
import { SpanKind, startSpan, traced, withSpan } from '@jarvis/platform/telemetry';
import type { FormattedExecutionResult as WsResult } from 'graphql-ws';
import type { upstreamSubscriptions } from './upstream.ts';

export interface FederatedSubscriptionRequest {
  document: DocumentNode;
  /** The hash of the operation's source: with the operation name, the key plans are cached on. */
  queryHash: string;
  operationName?: string | null | undefined;
  variables: Record<string, unknown>;
  principal: Principal;
  /** The gateway context subgraph fetches see (the principal and its signature). */
  context: object;
}

export interface FederatedSubscriptionsOptions {
  supergraphSdl: string;
  /** The gateway's data sources by subgraph name, for the fetches of `rest`. */
  dataSources: () => Record<string, GraphQLDataSource>;
  upstream: ReturnType<typeof upstreamSubscriptions>;
  log: Logger;
}

/**
 * @apollo/gateway keeps its planner to itself, so subscriptions plan with a QueryPlanner of their own over the
 * same supergraph — built on the first subscription, so a gateway that serves none never pays for it.
 */
function subscriptionPlanner(supergraphSdl: string) {
  const supergraph = Supergraph.build(supergraphSdl);
  const apiSchema: Schema = supergraph.apiSchema();
  const planner = new QueryPlanner(supergraph);
  const plans = new LRUCache<string, SubscriptionNode>({ max: 500 });
  return {
    apiSchema,
    schema: apiSchema.toGraphQLJSSchema() as GraphQLSchema,
    supergraphSchema: supergraph.schema.toGraphQLJSSchema(),
    planOf(request: FederatedSubscriptionRequest): SubscriptionNode {
      const key = `${request.operationName ?? ''}\u0000${request.queryHash}`;
      let node = plans.get(key);
      if (!node) {
        const operation = operationFromDocument(apiSchema, request.document, { operationName: request.operationName ?? undefined });
        const plan: QueryPlan = planner.buildQueryPlan(operation);
        if (plan.node?.kind !== 'Subscription') throw new Error('not a subscription operation');
        node = plan.node;
        plans.set(key, node);
      }
      return node;
    },
  };
}

export function federatedSubscriptions({ supergraphSdl, dataSources, upstream, log }: FederatedSubscriptionsOptions) {
  let planning: ReturnType<typeof subscriptionPlanner> | undefined;

  return {
    /** The subscription's events, each completed across subgraphs; `return()` unsubscribes upstream. */
    subscribe(request: FederatedSubscriptionRequest): AsyncIterableIterator<ExecutionResult> {
      const { apiSchema, schema, supergraphSchema, planOf } = (planning ??= subscriptionPlanner(supergraphSdl));
      const { primary, rest } = planOf(request);
      const operationContext = buildOperationContext({ schema, operationDocument: request.document, operationName: request.operationName ?? undefined });
      const events = upstream.subscribe(primary.serviceName, request.principal, {
        query: primary.operation,
        operationName: primary.operationName,
        variables: usedVariables(primary, request.variables),
      });
      const eventPlan: QueryPlan = { kind: 'QueryPlan', node: rest ? { kind: 'Sequence', nodes: [primary, rest] } : primary };
      const requestContext = {
        request: { query: '', variables: request.variables, operationName: request.operationName ?? undefined },
        context: request.context,
        logger: log,
        metrics: {},
        document: request.document,
        queryHash: request.queryHash,
        operationName: request.operationName ?? null,
      };
      // One span for the subscription, ended once it is set up; each event's span is its child.
      const subscribed = startSpan(`graphql subscription ${request.operationName ?? ''}`.trim(), {
        kind: SpanKind.SERVER,
        attributes: { 'graphql.operation.type': 'subscription', 'graphql.operation.name': request.operationName ?? '', 'jarvis.subgraph': primary.serviceName },
      });
      subscribed?.end();
      const parent = withSpan(subscribed);
      return mapStream(events, (event) =>
        traced('graphql subscription event', { parent }, () =>
          executeQueryPlan(
            eventPlan,
            { ...dataSources(), [primary.serviceName]: replaying(primary, event, dataSources()[primary.serviceName]) },
            requestContext as never,
            operationContext,
            supergraphSchema,
            apiSchema,
          ) as Promise<ExecutionResult>,
        ),
      );
    },
  };
}

function usedVariables(fetch: FetchNode, variables: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries((fetch.variableUsages ?? []).filter((name) => name in variables).map((name) => [name, variables[name]]));
}

/** The primary's subgraph, answering the primary fetch with the event and passing its other fetches on. */
function replaying(primary: FetchNode, event: WsResult<Record<string, unknown>, unknown>, source: GraphQLDataSource | undefined): GraphQLDataSource {
  return {
    async process(options) {
      if (options.request.query === primary.operation) return { data: event.data ?? null, errors: event.errors, extensions: event.extensions } as never;
      if (!source) throw new Error(`no data source for ${primary.serviceName}`);
      return source.process(options);
    },
  };
}

