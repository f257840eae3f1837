/**
 * GraphQL over WebSocket (graphql-ws, `graphql-transport-ws`) on the gateway's GraphQL path. The caller
 * authenticates in `connection_init` (`authorization: "Bearer …"`, as the HTTP header would carry it); a
 * refused credential closes the socket with 4403. Every operation then passes the checks an HTTP request
 * passes — document limits, validation against the API schema, the plan's request rate, authorization,
 * `@rateLimit` — before it runs. Subscriptions run federated (federated.ts); queries and mutations run through
 * Apollo Server as over HTTP.
 */
import type { Server } from 'node:http';
import { createHash } from 'node:crypto';
import type { ApolloServer } from '@apollo/server';
import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type ValidationRule,
} from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { AppError, mapStream, onStreamEnd, type LimitStore, type Logger, type Principal, type RequestObservation } from '@jarvis/platform';
import type { GatewayMetrics } from '../metrics.ts';
import type { PersistedDocuments } from '../persisted-documents.ts';
import { completeResult, unauthorizedErrors, type AuthorizedSchema, type Authorizer } from '../authorization.ts';
import { subscriptionLimitErrors, type FieldRateLimit } from '../rate-limits.ts';
import type { federatedSubscriptions } from './federated.ts';

/** The context every operation gets, as HTTP requests get it. */
export interface OperationContext {
  principal: Principal;
  ip: string;
  principalToken: () => Promise<string>;
  /** The HTTP request's metrics and span, for an operation over HTTP. */
  observation?: RequestObservation | null;
}

export interface WebSocketOptions {
  path: string;
  log: Logger;
  authenticate: (authorization: string | undefined) => Promise<Principal>;
  /** The request rate (the plan's, or the address's for anonymous callers): throws RATE_LIMITED when used up. */
  admit: (principal: Principal, ip: string) => Promise<unknown>;
  /** Counts an operation for usage metering. */
  count?: (principal: Principal) => void;
  contextFor: (principal: Principal, ip: string) => OperationContext;
  parseOptions: { maxTokens: number };
  validationRules: ValidationRule[];
  /** The API schema operations are validated against, and its authorizer. */
  schema: () => AuthorizedSchema;
  limits: { store: LimitStore; rules: Map<string, FieldRateLimit> };
  federated: ReturnType<typeof federatedSubscriptions>;
  apollo: ApolloServer<OperationContext>;
  metrics: Pick<GatewayMetrics, 'websocketConnections' | 'activeSubscriptions'>;
  /** Trusted documents an operation may name by hash (`extensions.persistedQuery.sha256Hash`). */
  documents: PersistedDocuments;
}

interface Connection {
  principal: Principal;
}

type Extra = { request: { socket: { remoteAddress?: string | undefined } } } & Partial<Connection>;

/** Serves graphql-ws on `server`'s upgrades to `path`; the returned close ends every socket with 1001. */
export function serveWebSocket(server: Server, options: WebSocketOptions): { close(): Promise<void> } {
  const wss = new WebSocketServer({ server, path: options.path });
  const rules = [...specifiedRules, ...options.validationRules];
  const disposable = useServer<Record<string, unknown>, Extra>(
    {
      schema: () => options.schema().apiSchema,
      async onConnect(ctx) {
        const authorization = ctx.connectionParams?.authorization;
        try {
          ctx.extra.principal = await options.authenticate(typeof authorization === 'string' ? authorization : undefined);
          options.metrics.websocketConnections.inc();
          return true;
        } catch (error) {
          options.log.info({ reason: (error as Error).message }, 'refused a WebSocket connection');
          return false;
        }
      },
      onDisconnect() {
        options.metrics.websocketConnections.dec();
      },
      async onSubscribe(ctx, _id, payload) {
        const principal = ctx.extra.principal!;
        return prepare(options, rules, principal, ctx.extra.request.socket.remoteAddress ?? 'unknown', payload);
      },
      subscribe: (args) => run(options, args),
      execute: (args) => runOnApollo(options.apollo, args),
    },
    wss,
  );
  return {
    async close() {
      await disposable.dispose();
    },
  };
}

interface Prepared {
  context: OperationContext;
  queryHash: string;
  analysis: ReturnType<Authorizer['analyze']>;
}

async function prepare(
  options: WebSocketOptions,
  rules: ValidationRule[],
  principal: Principal,
  ip: string,
  payload: SubscribePayload,
): Promise<ExecutionArgs | readonly GraphQLError[]> {
  const { apiSchema: schema, authorizer } = options.schema();
  let document: DocumentNode;
  try {
    const query = options.documents.resolve(payload);
    if (query === undefined) return [new GraphQLError('send the document, or the hash of a trusted one', { extensions: { code: 'BAD_USER_INPUT' } })];
    document = parse(query, options.parseOptions);
    payload = { ...payload, query };
  } catch (error) {
    return [error instanceof GraphQLError ? error : new GraphQLError('the document does not parse')];
  }
  const invalid = validate(schema, document, rules);
  if (invalid.length > 0) return invalid;
  const operation = getOperationAST(document, payload.operationName);
  if (!operation) return [new GraphQLError('Unable to identify the operation', { extensions: { code: 'BAD_USER_INPUT' } })];
  const variables = payload.variables ?? {};
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables);
  if (coerced.errors) return coerced.errors;
  try {
    await options.admit(principal, ip);
  } catch (error) {
    if (error instanceof AppError) return [new GraphQLError(error.message, { extensions: error.extensions })];
    throw error;
  }
  options.count?.(principal);
  const context = options.contextFor(principal, ip);
  const args = { schema, document, operationName: payload.operationName, variableValues: variables };
  if (operation.operation !== 'subscription') return { ...args, contextValue: context };

  const queryHash = createHash('sha256').update(payload.query).digest('hex');
  const analysis = authorizer.analyze({ queryHash, document, operationName: payload.operationName, principal });
  if (analysis.kind === 'rejected') return unauthorizedErrors(analysis.unauthorized);
  const limited = await subscriptionLimitErrors(options.limits.store, options.limits.rules, { document, operation, variables }, principal, ip);
  if (limited.length > 0) return limited;
  const prepared: Prepared = { context, queryHash, analysis };
  return { ...args, contextValue: prepared };
}

function run(options: WebSocketOptions, args: ExecutionArgs): AsyncIterableIterator<ExecutionResult> {
  const { context, queryHash, analysis } = args.contextValue as Prepared;
  const filtered = analysis.kind === 'filtered' ? analysis : undefined;
  const events = options.federated.subscribe({
    document: filtered?.document ?? args.document,
    queryHash: filtered?.queryHash ?? queryHash,
    operationName: args.operationName,
    variables: (args.variableValues ?? {}) as Record<string, unknown>,
    principal: context.principal,
    context,
  });
  options.metrics.activeSubscriptions.inc();
  const counted = onStreamEnd(events, () => options.metrics.activeSubscriptions.dec());
  return filtered ? mapStream(counted, async (result) => completeResult(result, filtered)) : counted;
}

async function runOnApollo(apollo: ApolloServer<OperationContext>, args: ExecutionArgs): Promise<ExecutionResult> {
  const response = await apollo.executeOperation(
    { query: args.document, operationName: args.operationName ?? undefined, variables: (args.variableValues ?? {}) as Record<string, unknown> },
    { contextValue: args.contextValue as OperationContext },
  );
  if (response.body.kind !== 'single') throw new Error('incremental delivery is not served over WebSocket');
  return response.body.singleResult as ExecutionResult;
}
