/**
 * Prometheus metrics (prom-client), one registry per service, served at `/metrics` on the service's own port
 * (http/health-and-metrics.ts).
 * Every series carries a `service` label, so the services of one process (`npm start`) stay apart. The
 * GraphQL families are the same on the gateway and the subgraphs; a service adds its own on its registry.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type Outcome = 'success' | 'error' | 'rejected';

export interface ServiceMetrics {
  registry: Registry;
  /** Operations by name and outcome: `rejected` is refused before any work (401, 429, invalid). */
  requests: Counter<'operation' | 'outcome'>;
  requestDuration: Histogram<'operation' | 'outcome'>;
  /** GraphQL errors by `extensions.code`. */
  errors: Counter<'code'>;
  /** Refusals by a rate limit or quota: which limit, and RATE_LIMITED or QUOTA_EXCEEDED. */
  limitRejections: Counter<'limit' | 'code'>;
  /** Records one operation: its count, how long it took, and its errors' codes. */
  observe(operation: string | null | undefined, outcome: Outcome, seconds: number, errorCodes?: Iterable<string>): void;
}

/** Latency buckets from 1 ms to 10 s: GraphQL operations, subgraph fetches, model calls. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createServiceMetrics(service: string): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'jarvis_graphql_requests_total',
    help: 'GraphQL operations by operation name and outcome',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'jarvis_graphql_request_duration_seconds',
    help: 'GraphQL operation latency by operation name and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({ name: 'jarvis_graphql_errors_total', help: 'GraphQL errors by extensions.code', labelNames: ['code'] as const, registers: [registry] });
  const limitRejections = new Counter({
    name: 'jarvis_limit_rejections_total',
    help: 'Work refused by a rate limit or quota',
    labelNames: ['limit', 'code'] as const,
    registers: [registry],
  });
  const operations = operationLabels();
  return {
    registry,
    requests,
    requestDuration,
    errors,
    limitRejections,
    observe(operation, outcome, seconds, errorCodes = []) {
      const labels = { operation: operations(operation), outcome };
      requests.inc(labels);
      requestDuration.observe(labels, seconds);
      for (const code of errorCodes) errors.inc({ code });
    },
  };
}

/** Operation names become labels only while few: a client sending new names at will must not grow the series without end. */
const MAX_OPERATION_LABELS = 200;
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

function operationLabels(): (name: string | null | undefined) => string {
  const known = new Set<string>();
  return (name) => {
    if (!name) return 'anonymous';
    if (known.has(name)) return name;
    if (!OPERATION_NAME.test(name) || known.size >= MAX_OPERATION_LABELS) return 'other';
    known.add(name);
    return name;
  };
}

/** A gauge read when Prometheus scrapes, from `read` (say, a count in the database); a failed read is skipped. */
export function gaugeOnScrape<Label extends string>(
  registry: Registry,
  spec: { name: string; help: string; labelNames: readonly Label[] },
  read: () => Promise<Array<[Partial<Record<Label, string>>, number]>>,
): Gauge<Label> {
  return new Gauge<Label>({
    ...spec,
    registers: [registry],
    async collect() {
      try {
        const values = await read();
        this.reset();
        for (const [labels, value] of values) this.set(labels, value);
      } catch {
        // The scrape goes on with the other families; the gauge keeps its last values.
      }
    },
  });
}
