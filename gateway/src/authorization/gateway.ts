/** The gateway, wrapped: every operation authorized before it is planned. */
import {
  getVariableValues,
  type GraphQLSchema,
} from 'graphql';
import { ANONYMOUS, type Principal } from '@jarvis/platform';
import { withOperation, wrapExecutor, type GatewayExecutor, type GatewayInterface, type GatewayRequestContext } from '../gateway-wrapper.ts';
import type { AuthorizationRules } from './rules.ts';
import { type Authorizer, type AuthorizerOptions, createAuthorizer } from './analysis.ts';
import { completeResult, unauthorizedErrors } from './result.ts';

/** The gateway's API schema with its authorizer, as the gateway last loaded it. */
export interface AuthorizedSchema {
  apiSchema: GraphQLSchema;
  authorizer: Authorizer;
}

/**
 * Follows the gateway's schema: the API schema and an authorizer for it, rebuilt on every load, for operations
 * over HTTP (authorizingGateway) and over WebSocket alike.
 */
export function authorizedSchema(gateway: GatewayInterface, rules: AuthorizationRules, options: AuthorizerOptions = {}): () => AuthorizedSchema {
  let current: AuthorizedSchema | undefined;
  gateway.onSchemaLoadOrUpdate(({ apiSchema }) => {
    current = { apiSchema, authorizer: createAuthorizer(apiSchema, rules, options) };
  });
  return () => {
    if (!current) throw new Error('the gateway executed an operation before loading its schema');
    return current;
  };
}

/** Wraps a gateway so every operation is authorized before it is planned. */
export function authorizingGateway(gateway: GatewayInterface, schema: () => AuthorizedSchema): GatewayInterface {
  return wrapExecutor(gateway, (execute) => authorizingExecutor(execute, () => schema().authorizer));
}

function authorizingExecutor(execute: GatewayExecutor, authorizer: () => Authorizer): GatewayExecutor {
  return async (requestContext) => {
    const analysis = authorizer().analyze({
      queryHash: requestContext.queryHash,
      document: requestContext.document,
      operationName: requestContext.request.operationName,
      principal: (requestContext.context as { principal?: Principal }).principal ?? ANONYMOUS,
    });
    if (analysis.kind === 'unchanged') return execute(requestContext);
    const invalidVariables = variableErrors(requestContext);
    if (invalidVariables) return { errors: invalidVariables };
    if (analysis.kind === 'rejected') return { data: null, errors: unauthorizedErrors(analysis.unauthorized) };
    return completeResult(await execute(withOperation(requestContext, analysis)), analysis);
  };
}

/**
 * Variables that do not coerce make a bad request whoever asks, answered as @apollo/gateway answers it (400,
 * BAD_USER_INPUT). It must be checked against the original operation: filtering may drop the variable.
 */
function variableErrors({ schema, operation, request }: GatewayRequestContext) {
  return getVariableValues(schema, operation.variableDefinitions ?? [], request.variables ?? {}).errors;
}
