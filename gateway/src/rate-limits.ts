import { GraphQLError, Kind, type DocumentNode, type FieldNode, type OperationDefinitionNode } from 'graphql';
import { ANONYMOUS, rateLimited, type LimitStore, type Principal, type RateDecision } from '@jarvis/platform';
import { rewritten, withOperation, wrapExecutor, type GatewayExecutor, type GatewayInterface, type GatewayRequestContext } from './gateway-wrapper.ts';
import { importedName, linksTo } from './links.ts';

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
  node: FieldNode;
  limit: FieldRateLimit;
}

/**
 * Wraps a gateway so `@rateLimit` holds per field before planning: a limited root field over its limit is left
 * out and answers null with a RATE_LIMITED error carrying `retryAfter`; when every root field is over, the
 * request is refused with HTTP 429 and Retry-After. Counters live in the shared limit store, so the limit holds
 * across gateway replicas.
 */
export function rateLimitingGateway(gateway: GatewayInterface, store: LimitStore, limits: Map<string, FieldRateLimit>): GatewayInterface {
  return wrapExecutor(gateway, (execute) => rateLimitingExecutor(execute, store, limits));
}

function rateLimitingExecutor(execute: GatewayExecutor, store: LimitStore, limits: Map<string, FieldRateLimit>): GatewayExecutor {
  return async (requestContext) => {
    const limited = limitedRootFields(requestContext.operation, limits);
    if (limited.length === 0) return execute(requestContext);
    const context = requestContext.context as { principal?: Principal; ip?: string };
    const refused = await overLimit(store, limited, context.principal ?? ANONYMOUS, context.ip ?? 'unknown');
    if (refused.size === 0) return execute(requestContext);

    const errors = [...refused].map(([node, decision]) => limitError(node, decision));
    const kept = requestContext.operation.selectionSet.selections.filter((s) => !(s.kind === Kind.FIELD && refused.has(s)));
    if (kept.length === 0) {
      const retryAfter = Math.max(...errors.map((e) => e.extensions.retryAfter as number));
      // The same HTTP head Apollo Server answers with: the whole request is refused.
      const http = requestContext.response?.http;
      if (http) {
        http.status = 429;
        http.headers.set('retry-after', String(retryAfter));
      }
      return { data: null, errors };
    }
    const result = await execute(withoutFields(requestContext, kept));
    const data = result.data ? { ...result.data } : result.data;
    for (const node of refused.keys()) if (data) data[responseKey(node)] = null;
    return { ...result, data, errors: [...(result.errors ?? []), ...errors] };
  };
}

/**
 * A subscription's limits, checked when it starts (a subscription has one root field, so it runs or not): the
 * errors of the fields over their limit, none when it may start.
 */
export async function subscriptionLimitErrors(
  store: LimitStore,
  limits: Map<string, FieldRateLimit>,
  operation: OperationDefinitionNode,
  principal: Principal,
  ip: string,
): Promise<GraphQLError[]> {
  const refused = await overLimit(store, limitedRootFields(operation, limits), principal, ip);
  return [...refused].map(([node, decision]) => limitError(node, decision));
}

/** Root fields of the operation with a limit, written directly in its selection set. */
function limitedRootFields(operation: OperationDefinitionNode, limits: Map<string, FieldRateLimit>): LimitedField[] {
  if (limits.size === 0) return [];
  const type = ROOT_TYPES[operation.operation];
  return operation.selectionSet.selections.flatMap((node) => {
    const limit = node.kind === Kind.FIELD ? limits.get(`${type}.${node.name.value}`) : undefined;
    return limit ? [{ node: node as FieldNode, limit }] : [];
  });
}

/** One hit per occurrence: a field asked for twice under two aliases costs two. */
async function overLimit(store: LimitStore, limited: LimitedField[], principal: Principal, ip: string) {
  const refused = new Map<FieldNode, RateDecision>();
  for (const { node, limit } of limited) {
    const key = `field:${limit.coordinate}:${subjectOf(limit.by, principal, ip)}`;
    const decision = await store.hit(key, { limit: limit.max, windowMs: limit.windowMs });
    if (!decision.allowed) refused.set(node, decision);
  }
  return refused;
}

function limitError(node: FieldNode, decision: RateDecision): GraphQLError {
  const { message, extensions } = rateLimited(`${node.name.value} is rate limited`, decision.retryAfterMs);
  return new GraphQLError(message, { path: [responseKey(node)], extensions });
}

const responseKey = (node: FieldNode) => node.alias?.value ?? node.name.value;

function withoutFields(requestContext: GatewayRequestContext, selections: OperationDefinitionNode['selectionSet']['selections']) {
  const operation: OperationDefinitionNode = { ...requestContext.operation, selectionSet: { ...requestContext.operation.selectionSet, selections } };
  const document: DocumentNode = {
    ...requestContext.document,
    definitions: requestContext.document.definitions.map((d) => (d === requestContext.operation ? operation : d)),
  };
  return withOperation(requestContext, rewritten(document, operation));
}
