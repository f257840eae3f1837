/** Authorization as a gateway policy: every operation authorized before it is planned, over any transport. */
import { getVariableValues, type GraphQLSchema } from 'graphql';
import type { GatewayInterface } from '../gateway-wrapper.ts';
import type { GatewayPolicy } from '../pipeline/policy.ts';
import type { AuthorizationRules } from './rules.ts';
import { type Authorizer, type AuthorizerOptions, createAuthorizer } from './analysis.ts';
import { completeResult, unauthorizedErrors } from './result.ts';

/** The gateway's API schema with its authorizer, as the gateway last loaded it. */
export interface AuthorizedSchema {
  apiSchema: GraphQLSchema;
  authorizer: Authorizer;
}

/** Follows the gateway's schema: the API schema and an authorizer for it, rebuilt on every load. */
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

/**
 * Fields the caller may not see are left out before planning and answered null with an error; an operation
 * with nothing left is not run. Variables that do not coerce make a bad request whoever asks, answered as
 * @apollo/gateway answers it (BAD_USER_INPUT): checked against the original operation, since leaving fields out
 * may drop a variable.
 */
export function authorizationPolicy(schema: () => AuthorizedSchema): GatewayPolicy {
  return {
    name: 'authorization',
    operation({ schema: apiSchema, document, operation, operationName, queryHash, variables, principal }) {
      const analysis = schema().authorizer.analyze({ queryHash, document, operationName, principal });
      if (analysis.kind === 'unchanged') return undefined;
      const invalidVariables = getVariableValues(apiSchema, operation.variableDefinitions ?? [], variables).errors;
      if (invalidVariables) return { refused: { errors: invalidVariables } };
      if (analysis.kind === 'rejected') return { refused: { data: null, errors: unauthorizedErrors(analysis.unauthorized) } };
      return { narrowed: analysis, complete: (result) => completeResult(result, analysis) };
    },
  };
}
