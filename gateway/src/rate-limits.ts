import {
  getDirectiveValues,
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  visit,
  type ASTNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type InlineFragmentNode,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Principal } from '@jarvis/platform/contracts';
import { rateLimited } from '@jarvis/platform/errors';
import type { LimitStore, RateDecision } from '@jarvis/platform/limits';
import { fragmentsOf, rewritten } from './gateway-wrapper.ts';
import type { GatewayPolicy } from './pipeline/policy.ts';
import { importedName, linksTo } from '@jarvis/platform/schema';

export type RateLimitBy = 'PRINCIPAL' | 'TENANT' | 'IP';

/** `@rateLimit(max, window, by)` on a root field: at most `max` calls per `window` for each caller `by` names. */
export interface FieldRateLimit {
  coordinate: string;
  max: number;
  windowMs: number;
  by: RateLimitBy;
}

const RATE_LIMIT_URL = /^https:\/\/jarvis\.dev\/rate-limit\/v1\.\d+$/;
const WINDOW = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const ROOT_TYPES = { query: 'Query', mutation: 'Mutation', subscription: 'Subscription' } as const;
const ROOT_TYPE_NAMES = new Set<string>(Object.values(ROOT_TYPES));

/**
 * The `@rateLimit` rules of a supergraph (kept there by `@composeDirective`), by coordinate `Type.field`. They
 * are enforced on root fields, where a call is one request's worth of work; anywhere else the gateway refuses
 * to start rather than silently not limiting.
 */
export function readRateLimits(document: DocumentNode): Map<string, FieldRateLimit> {
  const name = directiveName(document);
  const limits = new Map<string, FieldRateLimit>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    for (const field of definition.fields ?? []) {
      const directive = field.directives?.find((d) => d.name.value === name);
      if (!directive) continue;
      const coordinate = `${definition.name.value}.${field.name.value}`;
      if (!ROOT_TYPE_NAMES.has(definition.name.value)) throw new Error(`@rateLimit on ${coordinate}: only Query, Mutation and Subscription fields can be limited`);
      const args = Object.fromEntries((directive.arguments ?? []).map((a) => [a.name.value, a.value]));
      const max = args.max?.kind === Kind.INT ? Number(args.max.value) : NaN;
      const window = args.window?.kind === Kind.STRING ? WINDOW.exec(args.window.value) : null;
      const by = args.by?.kind === Kind.ENUM ? (args.by.value as RateLimitBy) : 'PRINCIPAL';
      if (!(max > 0) || !window) throw new Error(`@rateLimit on ${coordinate}: max must be positive and window like "10s", "1m", "1h"`);
      limits.set(coordinate, { coordinate, max, windowMs: Number(window[1]) * UNIT_MS[window[2] as keyof typeof UNIT_MS], by });
    }
  }
  return limits;
}

/** The name `@rateLimit` goes by in this supergraph: imported under its own name, or renamed in the import. */
function directiveName(document: DocumentNode): string {
  for (const { link } of linksTo(document, RATE_LIMIT_URL)) {
    const name = importedName(link, 'rateLimit');
    if (name) return name;
  }
  return 'rateLimit';
}

/** Who a limit counts for: the signed-in user or API key, its tenant, or the client address. */
function subjectOf(by: RateLimitBy, principal: Principal, ip: string): string {
  if (by === 'TENANT' && principal.tenantId) return `tenant:${principal.tenantId}`;
  if (by === 'PRINCIPAL' && (principal.userId ?? principal.apiKeyId)) return `principal:${principal.userId ?? principal.apiKeyId}`;
  return `ip:${ip}`;
}

interface LimitedField {
  /** The response key it answers under. */
  key: string;
  node: FieldNode;
  limit: FieldRateLimit;
}

/**
 * `@rateLimit` per field, before planning: a limited root field over its limit is left out and answers null
 * with a RATE_LIMITED error carrying `retryAfter`; when every root field is over (a subscription has one), the
 * operation is refused (over HTTP, 429 with Retry-After). Counters live in the shared limit store, so the limit
 * holds across gateway replicas.
 */
export function fieldRateLimitPolicy(store: LimitStore, limits: Map<string, FieldRateLimit>): GatewayPolicy {
  return {
    name: 'field rate limits',
    async operation({ document, operation, variables, principal, ip }) {
      const limited = limitedRootFields(document, operation, variables, limits);
      if (limited.length === 0) return undefined;
      const refused = await overLimit(store, limited, principal, ip);
      if (refused.size === 0) return undefined;
      const errors = [...refused].map(([key, { node, decision }]) => limitError(key, node, decision));
      const left = withoutRootFields(document, operation, new Set(refused.keys()), variables);
      if (!left) {
        const retryAfter = Math.max(...errors.map((e) => e.extensions.retryAfter as number));
        return { refused: { data: null, errors }, http: { status: 429, headers: { 'retry-after': String(retryAfter) } } };
      }
      return {
        narrowed: left,
        complete(result) {
          const data = result.data ? { ...result.data } : result.data;
          for (const key of refused.keys()) if (data) data[key] = null;
          return { ...result, data, errors: [...(result.errors ?? []), ...errors] };
        },
      };
    },
  };
}

type Variables = Record<string, unknown>;

/**
 * The limited root fields the operation will execute, one per response key, collected as the executor collects
 * them: through inline fragments and fragment spreads, with @skip and @include applied. A field asked for twice
 * under two aliases executes twice, so it counts twice; the same key selected twice executes once.
 */
function limitedRootFields(document: DocumentNode, operation: OperationDefinitionNode, variables: Variables, limits: Map<string, FieldRateLimit>): LimitedField[] {
  if (limits.size === 0) return [];
  const type = ROOT_TYPES[operation.operation];
  const limited: LimitedField[] = [];
  for (const [key, node] of rootFields(fragmentsOf(document), operation.selectionSet, variables)) {
    const limit = limits.get(`${type}.${node.name.value}`);
    if (limit) limited.push({ key, node, limit });
  }
  return limited;
}

function rootFields(fragments: Map<string, FragmentDefinitionNode>, selectionSet: SelectionSetNode, variables: Variables, into = new Map<string, FieldNode>(), visited = new Set<string>()) {
  for (const selection of selectionSet.selections) {
    if (!included(selection, variables)) continue;
    if (selection.kind === Kind.FIELD) {
      const key = responseKey(selection);
      if (!into.has(key)) into.set(key, selection);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      rootFields(fragments, selection.selectionSet, variables, into, visited);
    } else if (!visited.has(selection.name.value)) {
      // Validation refuses fragment cycles; the guard keeps a spread from being followed twice regardless.
      visited.add(selection.name.value);
      const fragment = fragments.get(selection.name.value);
      if (fragment) rootFields(fragments, fragment.selectionSet, variables, into, visited);
    }
  }
  return into;
}

/** @skip and @include as the executor applies them. */
function included(node: SelectionNode, variables: Variables): boolean {
  if (!node.directives?.length) return true;
  if (getDirectiveValues(GraphQLSkipDirective, node, variables)?.if === true) return false;
  return getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if !== false;
}

/**
 * The operation without the root fields under `keys`, wherever they were selected: fragment spreads at the root
 * become inline fragments so that a fragment used elsewhere too keeps its fields there. Undefined when nothing
 * would be left to execute.
 */
function withoutRootFields(document: DocumentNode, operation: OperationDefinitionNode, keys: ReadonlySet<string>, variables: Variables) {
  const fragments = fragmentsOf(document);
  const selections = rootSelectionsWithout(operation.selectionSet, keys, fragments);
  if (rootFields(fragments, { kind: Kind.SELECTION_SET, selections }, variables).size === 0) return undefined;
  const kept: OperationDefinitionNode = { ...operation, selectionSet: { kind: Kind.SELECTION_SET, selections } };
  const used = usedFragments(kept, fragments);
  const definitions = document.definitions.flatMap((d) =>
    d === operation ? [kept] : d.kind === Kind.FRAGMENT_DEFINITION && !used.has(d.name.value) ? [] : [d],
  );
  return rewritten({ ...document, definitions }, kept);
}

function rootSelectionsWithout(selectionSet: SelectionSetNode, keys: ReadonlySet<string>, fragments: Map<string, FragmentDefinitionNode>): SelectionNode[] {
  return selectionSet.selections.flatMap((selection): SelectionNode[] => {
    if (selection.kind === Kind.FIELD) return keys.has(responseKey(selection)) ? [] : [selection];
    const fragment = selection.kind === Kind.INLINE_FRAGMENT ? selection : fragments.get(selection.name.value);
    if (!fragment) return [selection];
    const selections = rootSelectionsWithout(fragment.selectionSet, keys, fragments);
    if (selections.length === 0) return [];
    const inline: InlineFragmentNode = {
      kind: Kind.INLINE_FRAGMENT,
      typeCondition: fragment.typeCondition,
      directives: selection.directives,
      selectionSet: { kind: Kind.SELECTION_SET, selections },
    };
    return [inline];
  });
}

/** Fragments the operation still spreads, directly or through other fragments. */
function usedFragments(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): Set<string> {
  const used = new Set<string>();
  const visitSpreads = (node: ASTNode) =>
    visit(node, {
      FragmentSpread(spread) {
        if (used.has(spread.name.value)) return;
        used.add(spread.name.value);
        const fragment = fragments.get(spread.name.value);
        if (fragment) visitSpreads(fragment);
      },
    });
  visitSpreads(operation);
  return used;
}

/** One hit per response key the operation executes. */
async function overLimit(store: LimitStore, limited: LimitedField[], principal: Principal, ip: string) {
  const refused = new Map<string, { node: FieldNode; decision: RateDecision }>();
  for (const { key, node, limit } of limited) {
    const decision = await store.hit(`field:${limit.coordinate}:${subjectOf(limit.by, principal, ip)}`, { limit: limit.max, windowMs: limit.windowMs });
    if (!decision.allowed) refused.set(key, { node, decision });
  }
  return refused;
}

function limitError(key: string, node: FieldNode, decision: RateDecision): GraphQLError {
  const { message, extensions } = rateLimited(`${node.name.value} is rate limited`, decision.retryAfterMs);
  return new GraphQLError(message, { path: [key], extensions });
}

const responseKey = (node: FieldNode) => node.alias?.value ?? node.name.value;
