/**
 * What the load benchmarks share: their settings — BENCH_DURATION (seconds per scenario, default 10) and
 * BENCH_CONNECTIONS (default 50) — one GraphQL query POSTed over and over by autocannon, and the line that
 * says what machine the figures come from.
 */
import { cpus } from 'node:os';
import autocannon from 'autocannon';

export const duration = Number(process.env.BENCH_DURATION ?? 10);
export const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);

/** `query` POSTed to `url` from `connections` connections for `seconds`. */
export function postLoad(url: string, query: string, headers: Record<string, string> = {}, seconds = duration) {
  return autocannon({
    url,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query }),
  });
}

export const machine = () => `${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${connections} connections, ${duration}s each`;
