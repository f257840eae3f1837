import { createHash } from 'node:crypto';
import type { ApolloServerOptionsWithGateway, BaseContext } from '@apollo/server';
import { GraphQLError, print, type DocumentNode, type OperationDefinitionNode } from 'graphql';

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
 * Apollo Server hands the gateway documents whose operation it could not pick (several and no operationName, or
 * a name none has), expecting errors back, which it answers with 400 OPERATION_RESOLUTION_FAILURE. Nothing
 * inside is asked to run such a document.
 */
export function requireOperation(gateway: GatewayInterface): GatewayInterface {
  return wrapExecutor(gateway, (execute) => async (requestContext) => {
    if (requestContext.operation) return execute(requestContext);
    const name = requestContext.request.operationName;
    return { errors: [new GraphQLError(unresolvedOperation(name))] };
  });
}

export function unresolvedOperation(name: string | null | undefined): string {
  return name ? `Unknown operation named "${name}".` : 'Must provide operation name if query contains multiple operations.';
}
