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
 * parser's recursion), then depth and aliases during validation. Depth counts inline fragments and fragment
 * spreads as levels too: nesting fragments alone must not take a document past it (a planner recursing
 * through them would run out of stack). Introspection is exempt from depth, so schema-driven tooling keeps
 * working.
 */
export function documentLimits(config: Config): { parseOptions: { maxTokens: number }; validationRules: ValidationRule[] } {
  return {
    parseOptions: { maxTokens: config.MAX_QUERY_TOKENS },
    validationRules: [
      maxDepthRule({ n: config.MAX_QUERY_DEPTH, ignoreIntrospection: true, flattenFragments: false, ...asValidationError }),
      maxAliasesRule({ n: config.MAX_QUERY_ALIASES, ...asValidationError }),
    ],
  };
}
