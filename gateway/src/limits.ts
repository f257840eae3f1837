import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { GraphQLError, Kind, type SelectionSetNode, type ValidationContext, type ValidationRule } from 'graphql';
import type { Config } from '@jarvis/platform/config';
import type { GatewayPolicy } from './pipeline/policy.ts';

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
 * working — but not from the nesting of fragments, which no introspection query needs.
 */
export function documentLimits(config: Config): GatewayPolicy & { parseOptions: { maxTokens: number }; validationRules: ValidationRule[] } {
  return {
    name: 'document limits',
    parseOptions: { maxTokens: config.MAX_QUERY_TOKENS },
    validationRules: [
      maxDepthRule({ n: config.MAX_QUERY_DEPTH, ignoreIntrospection: true, flattenFragments: false, ...asValidationError }),
      maxFragmentNestingRule(config.MAX_QUERY_DEPTH),
      maxAliasesRule({ n: config.MAX_QUERY_ALIASES, ...asValidationError }),
    ],
  };
}

/**
 * At most `max` fragments (inline or spread) nested along any path of an operation, whatever fields lie
 * between them, introspection included. A named fragment's own nesting is measured once, however often it is
 * spread, so a document cannot make this check itself expensive.
 */
export function maxFragmentNestingRule(max: number): ValidationRule {
  return (context) => {
    const ofFragment = new Map<string, number>();
    const nesting = (selectionSet: SelectionSetNode | undefined, visiting: Set<string>): number => {
      let deepest = 0;
      for (const selection of selectionSet?.selections ?? []) {
        if (deepest > max) break;
        if (selection.kind === Kind.FIELD) deepest = Math.max(deepest, nesting(selection.selectionSet, visiting));
        else if (selection.kind === Kind.INLINE_FRAGMENT) deepest = Math.max(deepest, 1 + nesting(selection.selectionSet, visiting));
        else deepest = Math.max(deepest, 1 + fragmentNesting(selection.name.value, visiting));
      }
      return deepest;
    };
    const fragmentNesting = (name: string, visiting: Set<string>): number => {
      const known = ofFragment.get(name);
      // A cycle is NoFragmentCyclesRule's to report; here it only must not recurse for ever.
      if (known !== undefined || visiting.has(name)) return known ?? 0;
      visiting.add(name);
      const measured = nesting(context.getFragment(name)?.selectionSet, visiting);
      visiting.delete(name);
      ofFragment.set(name, measured);
      return measured;
    };
    return {
      OperationDefinition(operation) {
        const found = nesting(operation.selectionSet, new Set());
        if (found > max) context.reportError(new GraphQLError(`Fragments are nested more than ${max} deep.`, { nodes: [operation] }));
      },
    };
  };
}
