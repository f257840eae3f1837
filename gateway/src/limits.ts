import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import type { GraphQLError, ValidationContext, ValidationRule } from 'graphql';
import type { Config } from '@jarvis/platform';

/** Report a violation as a validation error (the rules throw by default, which Apollo turns into a 500). */
const asValidationError = {
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};

/**
 * Limits on the document itself, checked before any planning: tokens while parsing (which also bounds the
 * parser's recursion), then depth and aliases during validation. Introspection is exempt from depth, so
 * schema-driven tooling keeps working.
 */
export function documentLimits(config: Config): { parseOptions: { maxTokens: number }; validationRules: ValidationRule[] } {
  return {
    parseOptions: { maxTokens: config.MAX_QUERY_TOKENS },
    validationRules: [
      maxDepthRule({ n: config.MAX_QUERY_DEPTH, ignoreIntrospection: true, flattenFragments: true, ...asValidationError }),
      maxAliasesRule({ n: config.MAX_QUERY_ALIASES, ...asValidationError }),
    ],
  };
}
