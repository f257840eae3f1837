/**
 * What every service records of each GraphQL request over HTTP: a server span (the child of the caller's,
 * from `traceparent`), active while the request is handled, and the request's count, latency, outcome and
 * error codes in the service's metrics.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Outcome, ServiceMetrics } from '../metrics.ts';
import { extractTraceContext, inContext, SpanKind, SpanStatusCode, startSpan, withSpan, type Span } from '../telemetry.ts';

export interface RequestObservation {
  startedAt: number;
  span: Span | undefined;
  /** The operation's name once known; the request's `operationName` otherwise. */
  operation?: string | null;
  errorCodes: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    observation: RequestObservation | null;
  }
}

/** Errors that refuse work for a limit, counted as rejections too. */
const LIMIT_CODES = new Set(['RATE_LIMITED', 'QUOTA_EXCEEDED']);

/** Records the request's GraphQL errors (their `extensions.code`) on its observation. */
export function observeErrors(request: FastifyRequest | undefined, codes: Iterable<string>): void {
  request?.observation?.errorCodes.push(...codes);
}

/**
 * Observes every request to `path`. Register before hooks that may refuse a request, so refusals count.
 * `limitOf` names the limit behind a RATE_LIMITED or QUOTA_EXCEEDED error (the gateway's plan rate, say).
 */
export function observeGraphQLRequests(
  app: FastifyInstance,
  path: string,
  metrics: ServiceMetrics,
  limitOf: (code: string, status: number) => string = (code) => (code === 'QUOTA_EXCEEDED' ? 'quota' : 'rate'),
): void {
  app.decorateRequest('observation', null);
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.url !== path) return done();
    const span = startSpan(`${request.method} ${path}`, { kind: SpanKind.SERVER, parent: extractTraceContext(request.headers) });
    request.observation = { startedAt: performance.now(), span, errorCodes: [] };
    done();
  });
  // After the body is read: the handler and everything it awaits run with the request's span active.
  app.addHook('preHandler', (request, _reply, done) => {
    const span = request.observation?.span;
    if (span) inContext(withSpan(span), done);
    else done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const observation = request.observation;
    if (!observation) return done();
    const operation = observation.operation ?? operationNameOf(request.body ?? request.query);
    const outcome: Outcome = reply.statusCode >= 500 || (reply.statusCode < 400 && observation.errorCodes.length > 0) ? 'error' : reply.statusCode >= 400 ? 'rejected' : 'success';
    metrics.observe(operation, outcome, (performance.now() - observation.startedAt) / 1000, observation.errorCodes);
    for (const code of observation.errorCodes) if (LIMIT_CODES.has(code)) metrics.limitRejections.inc({ limit: limitOf(code, reply.statusCode), code });
    endRequestSpan(observation.span, operation, reply.statusCode, outcome);
    done();
  });
}

function endRequestSpan(span: Span | undefined, operation: string | null | undefined, status: number, outcome: Outcome) {
  if (!span) return;
  if (operation) span.updateName(`graphql ${operation}`);
  span.setAttributes({ 'graphql.operation.name': operation ?? '', 'http.response.status_code': status, 'jarvis.outcome': outcome });
  if (outcome === 'error') span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

function operationNameOf(body: unknown): string | undefined {
  const name = (body as { operationName?: unknown } | null)?.operationName;
  return typeof name === 'string' ? name : undefined;
}
