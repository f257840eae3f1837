/**
 * What a `@rateLimit` check costs at the gateway: the same one-field query with and without a limit on the
 * field, limits in memory and (with REDIS_URL) in Redis, side by side in one run. The limit is set high enough
 * never to refuse, so every request pays for the check and none is turned away.
 *   BENCH_DURATION (seconds per scenario, default 10), BENCH_CONNECTIONS (default 50).
 */
import { createGatewayServer } from '@jarvis/gateway';
import { postGraphQL } from '@jarvis/platform/client';
import { loadConfig } from '@jarvis/platform/config';
import type { RunningService } from '@jarvis/platform/http';
import { deleteRedisKeys, RATE_LIMIT_SDL, serveSupergraph, uniqueRedisPrefix } from '@jarvis/platform/testing';
import { duration, machine, postLoad } from './load.ts';

const redisUrl = process.env.REDIS_URL;

const SDL = `${RATE_LIMIT_SDL}
  type Query {
    open: String
    limited: String @rateLimit(max: 2000000000, window: "1h", by: IP)
  }
`;

const supergraph = await serveSupergraph([{ name: 'bench', sdl: SDL, resolvers: { Query: { open: () => 'ok', limited: () => 'ok' } } }]);
const prefix = uniqueRedisPrefix();
const gateways: RunningService[] = [];

async function gateway(extra: Record<string, string>): Promise<RunningService> {
  const config = loadConfig({
    LOG_LEVEL: 'warn',
    SUPERGRAPH_PATH: supergraph.supergraphPath,
    SUBGRAPH_URLS: supergraph.subgraphUrls,
    INTERNAL_AUTH_SECRET: 'a-secret-the-bench-subgraph-simply-ignores',
    // The load comes from one address without credentials: the anonymous rate, checked alike in every scenario,
    // is set out of the way so the field's own limit is what differs.
    ANONYMOUS_REQUESTS_PER_SECOND: '1000000000',
    ANONYMOUS_BURST: '1000000000',
    ...extra,
  });
  const started = await (await createGatewayServer(config)).start(0);
  gateways.push(started);
  return started;
}

try {
  const inMemory = await gateway({});
  const scenarios = [
    { name: 'no limit on the field', url: inMemory.url, query: '{ open }' },
    { name: '@rateLimit, limits in memory', url: inMemory.url, query: '{ limited }' },
  ];
  if (redisUrl) {
    const withRedis = await gateway({ REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix });
    scenarios.push({ name: '@rateLimit, limits in Redis', url: withRedis.url, query: '{ limited }' });
  }
  // Every scenario warmed before any is measured, so the first one does not pay for the process warming up.
  for (const scenario of scenarios) {
    const check = await postGraphQL(scenario.url, scenario.query);
    if (check.body.errors || !check.body.data) throw new Error(`${scenario.name}: ${JSON.stringify(check.body)}`);
    await postLoad(scenario.url, scenario.query, {}, 3);
  }
  const rows = [];
  for (const scenario of scenarios) {
    const result = await postLoad(scenario.url, scenario.query, {}, duration);
    if (result.non2xx || result.errors) throw new Error(`${scenario.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    rows.push({ name: scenario.name, rps: result.requests.average, mean: result.latency.average, p50: result.latency.p50, p99: result.latency.p99 });
  }
  const base = rows[0]!;
  console.log(`\n${machine()}`);
  console.log('gateway, load generator and subgraph in one process\n');
  // autocannon reports percentiles in whole milliseconds; the mean shows what a check adds below that.
  console.log('| scenario | req/s | mean ms | p50 ms | p99 ms | mean added | p50 added | p99 added |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const added = (value: number, baseline: number) => (value - baseline).toFixed(2);
    console.log(
      `| ${row.name} | ${row.rps.toFixed(0)} | ${row.mean.toFixed(2)} | ${row.p50} | ${row.p99} | ${added(row.mean, base.mean)} | ${row.p50 - base.p50} | ${row.p99 - base.p99} |`,
    );
  }
} finally {
  await Promise.all(gateways.map((g) => g.close()));
  await supergraph.close();
  if (redisUrl) await deleteRedisKeys(redisUrl, prefix);
}
