/** The analysis of one operation for one kind of caller, cached per document and kind of caller. */
import {
  getOperationAST,
  Kind,
  visit,
  type ASTNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import type { Principal } from '@jarvis/platform/contracts';
import { fragmentsOf, rewritten, type RewrittenOperation } from '../gateway-wrapper.ts';
import type { AuthorizationRules } from './rules.ts';
import { type Caller, callerOf, namesIn } from './caller.ts';
import { type ErrorPath, OperationFilter, type Step, withSelections } from './operation-filter.ts';

export type Analysis =
  | { kind: 'unchanged' }
  | { kind: 'rejected'; unauthorized: readonly ErrorPath[] }
  | (RewrittenOperation & {
      kind: 'filtered';
      unauthorized: readonly ErrorPath[];
      nulls: readonly Step[][];
      typenames: readonly Step[][];
    });

const UNCHANGED: Analysis = Object.freeze({ kind: 'unchanged' });

export interface AnalysisRequest {
  /** The hash of the operation's source (Apollo Server's `queryHash`): with the caller, the cache key. */
  queryHash: string;
  document: DocumentNode;
  operationName?: string | null;
  principal: Principal;
}

export interface AuthorizerOptions {
  /** Refuse the whole request when anything in it is unauthorized, instead of answering the rest. */
  rejectUnauthorized?: boolean;
  /** How many (operation, kind of caller) analyses to keep. */
  cacheSize?: number;
}

/**
 * Decides, per operation and kind of caller, what of the operation may run. Analyses are cached by document,
 * operation name and the caller's authorization-relevant attributes, so a repeated request is a map lookup.
 */
export function createAuthorizer(apiSchema: GraphQLSchema, rules: AuthorizationRules, options: AuthorizerOptions = {}) {
  const requirements = [...rules.types.values(), ...rules.fields.values()];
  const scopesNamed = namesIn(requirements, (r) => r.scopes);
  const policiesNamed = namesIn(requirements, (r) => r.policies);
  const cache = new LRUCache<string, Analysis>({ max: options.cacheSize ?? 1000 });

  return {
    analyze({ queryHash, document, operationName, principal }: AnalysisRequest): Analysis {
      if (requirements.length === 0) return UNCHANGED;
      const caller = callerOf(principal, scopesNamed, policiesNamed);
      const key = `${caller.key}\u0000${operationName ?? ''}\u0000${queryHash}`;
      const cached = cache.get(key);
      if (cached) return cached;
      const analysis = analyzeOperation(apiSchema, rules, document, operationName, caller, options);
      cache.set(key, analysis);
      return analysis;
    },
  };
}

export type Authorizer = ReturnType<typeof createAuthorizer>;

function analyzeOperation(
  schema: GraphQLSchema,
  rules: AuthorizationRules,
  document: DocumentNode,
  operationName: string | null | undefined,
  caller: Caller,
  { rejectUnauthorized = false }: AuthorizerOptions,
): Analysis {
  const operation = getOperationAST(document, operationName);
  const root = operation && schema.getRootType(operation.operation);
  // Operations the gateway cannot run anyway are left for it to refuse.
  if (!operation || !root) return UNCHANGED;
  const filter = new OperationFilter(schema, rules, caller, fragmentsOf(document));
  if (!filter.typeAllowed(root)) return { kind: 'rejected', unauthorized: [[]] };
  const { selections, findings } = filter.selectionSet(operation.selectionSet, root);
  if (findings.unauthorized.length === 0) return UNCHANGED;
  if (selections.length === 0 || rejectUnauthorized) return { kind: 'rejected', unauthorized: findings.unauthorized };
  const filtered = filteredDocument(withSelections(operation, selections), filter);
  return {
    kind: 'filtered',
    unauthorized: findings.unauthorized,
    ...rewritten(filtered.document, filtered.operation),
    nulls: findings.nulls,
    typenames: findings.typenames,
  };
}

/** The operation with the filtered fragments it still uses, and only the variables it still uses. */
function filteredDocument(
  operation: OperationDefinitionNode,
  filter: OperationFilter,
): { document: DocumentNode; operation: OperationDefinitionNode } {
  const used = { variables: new Set<string>(), fragments: new Set<string>() };
  collectUsages([operation.selectionSet, ...(operation.directives ?? [])], used);
  const fragments: FragmentDefinitionNode[] = [];
  // A Set visits what is added while it is being iterated, so this follows fragments used by fragments.
  for (const name of used.fragments) {
    const definition = filter.fragmentDefinition(name);
    if (!definition) continue;
    fragments.push(definition);
    collectUsages([definition.selectionSet, ...(definition.directives ?? [])], used);
  }
  const variableDefinitions = operation.variableDefinitions?.filter((v) => used.variables.has(v.variable.name.value));
  const filtered = { ...operation, variableDefinitions };
  return { document: { kind: Kind.DOCUMENT, definitions: [filtered, ...fragments] }, operation: filtered };
}

function collectUsages(nodes: readonly ASTNode[], used: { variables: Set<string>; fragments: Set<string> }) {
  for (const node of nodes) {
    visit(node, {
      Variable: (variable) => void used.variables.add(variable.name.value),
      FragmentSpread: (spread) => void used.fragments.add(spread.name.value),
    });
  }
}

/** Null where the filtered operation left fields out, null propagation as GraphQL does it, and the errors. */
