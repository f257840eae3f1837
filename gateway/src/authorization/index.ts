/*
 * Federation 2.6 authorization directives (@authenticated, @requiresScopes, @policy) enforced the way Apollo
 * Router does (apollo-router/src/plugins/authorization): unauthorized fields are removed from the operation
 * before planning, come back null with an UNAUTHORIZED_FIELD_OR_TYPE error, and an operation with nothing
 * left is not executed at all. By concern: rules.ts reads them from the supergraph, caller.ts says what a
 * caller holds, operation-filter.ts filters one operation, analysis.ts caches that per kind of caller,
 * result.ts completes the response, gateway.ts makes it a gateway policy.
 */
export { readAuthorization, type AuthorizationRules, type Requirement } from './rules.ts';
export { createAuthorizer, type Analysis, type AnalysisRequest, type Authorizer, type AuthorizerOptions } from './analysis.ts';
export { completeResult, unauthorizedErrors } from './result.ts';
export { authorizationPolicy, authorizedSchema, type AuthorizedSchema } from './gateway.ts';
