import { createHash } from 'node:crypto';
import type { ApolloServerOptionsWithGateway, BaseContext } from '@apollo/server';
import { GraphQLError, Kind, print, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';

export type GatewayInterface = ApolloServerOptionsWithGateway<BaseContext>['gateway'];
export type GatewayExecutor = NonNullable<Awaited<ReturnType<GatewayInterface['load']>>['executor']>;
export type GatewayRequestContext = Parameters<GatewayExecutor>[0];

/** The gateway as Apollo Server sees it, with every operation passing through `wrap` before it is planned. */
export function wrapExecutor(gateway: GatewayInterface, wrap: (execute: GatewayExecutor) => GatewayExecutor): GatewayInterface {
  return {
    onSchemaLoadOrUpdate: (callback) => gateway.onSchemaLoadOrUpdate(callback),
    stop: () => gateway.stop(),
    async load(options) {
      const { executor } = await gateway.load(options);
      return { executor: executor && wrap(executor) };
    },
  };
}

export interface RewrittenOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  source: string;
  queryHash: string;
}

/** An operation rewritten from `document`, with the source and hash @apollo/gateway keys its plans on. */
export function rewritten(document: DocumentNode, operation: OperationDefinitionNode): RewrittenOperation {
  const source = print(document);
  return { document, operation, source, queryHash: createHash('sha256').update(source).digest('hex') };
}

/**
 * @apollo/gateway caches query plans by `queryHash` and operation name and plans from `document`, so all of
 * them (and the source they stand for) must describe the rewritten operation.
 */
export function withOperation(requestContext: GatewayRequestContext, { document, operation, source, queryHash }: RewrittenOperation): GatewayRequestContext {
  return {
    ...requestContext,
    request: { ...requestContext.request, query: source },
    document,
    operation,
    source,
    queryHash,
  };
}

/**
 * What the gateway cannot run over HTTP is refused before anything inside sees it. Apollo Server hands it
 * documents whose operation it could not pick (several and no operationName, or a name none has), expecting
 * errors back, which it answers with 400 OPERATION_RESOLUTION_FAILURE; and subscriptions, which are served over
 * WebSocket only (400 with where to go).
 */
export function requireOperation(gateway: GatewayInterface): GatewayInterface {
  return wrapExecutor(gateway, (execute) => async (requestContext) => {
    const { operation } = requestContext;
    if (!operation) return { errors: [new GraphQLError(unresolvedOperation(requestContext.request.operationName))] };
    if (operation.operation !== 'subscription') return execute(requestContext);
    if (requestContext.response?.http) requestContext.response.http.status = 400;
    const message = 'subscriptions are served over WebSocket (graphql-transport-ws) on this same path, not over HTTP';
    return { errors: [new GraphQLError(message, { extensions: { code: 'BAD_REQUEST' } })] };
  });
}

export function unresolvedOperation(name: string | null | undefined): string {
  return name ? `Unknown operation named "${name}".` : 'Must provide operation name if query contains multiple operations.';
}

/** A document's fragment definitions by name. */
export function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  return new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
}
