/**
 * What the benchmarks share: the settings of the load benchmarks — BENCH_DURATION (seconds per scenario,
 * default 10) and BENCH_CONNECTIONS (default 50) — one GraphQL query POSTed over and over by autocannon, the
 * line that says what machine the figures come from, the percentiles and means they report, and the process
 * stack (as under `npm start`) of those that run one.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadConfig, SUBGRAPHS, type Config, type ServiceName } from '@jarvis/platform';
import { dropSchemas, freePort, uniqueSchemaPrefix } from '@jarvis/platform/testing';
import { launchProcesses, type ProcessStack } from '../scripts/processes.ts';

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

/** The machine the figures come from. */
export const hardware = () => `${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
/** The machine and the load settings. */
export const machine = () => `${hardware()}, ${connections} connections, ${duration}s each`;

/** Nearest rank: the ⌈fraction × n⌉-th smallest of `values` (fraction 0–1; 1 is the largest), NaN when there are none. */
export function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))] ?? NaN;
}

/** The lower middle value when there are two. */
export const median = (values: number[]) => percentile(values, 0.5);

export function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
}

export interface BenchStack extends ProcessStack {
  config: Config;
  /** The internal secret the processes share, to sign a principal as the gateway does. */
  secret: string;
  /** Stops the processes, then removes the data directory and (on PostgreSQL) the run's schemas. */
  stop(): Promise<void>;
}

export interface BenchStackOptions {
  /** Ports free at launch instead of the configured ones: other stacks may be running on a shared machine. */
  freePorts?: boolean;
}

/**
 * The gateway and the subgraphs as child processes, laid out as under `npm start`, on a data directory of
 * their own, quiet (LOG_LEVEL warn), with a fresh internal secret and dev login on; `extraEnv` on top.
 */
export async function launchBenchStack(extraEnv: Record<string, string> = {}, options: BenchStackOptions = {}): Promise<BenchStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-bench-'));
  const secret = randomBytes(32).toString('base64url');
  // On PostgreSQL, a run of its own in schemas dropped afterwards, so every run starts from the same data.
  const schemaPrefix = process.env.DATABASE_URL ? uniqueSchemaPrefix() : undefined;
  const services: ServiceName[] = ['gateway', ...SUBGRAPHS.map((s) => s.name)];
  const ports = options.freePorts ? await Promise.all(services.map(async (name) => [`${name.toUpperCase()}_PORT`, String(await freePort())])) : [];
  const env = {
    ...process.env,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    INTERNAL_AUTH_SECRET: secret,
    AUTH_DEV_LOGIN: 'true',
    ...extraEnv,
    ...Object.fromEntries(ports),
    ...(schemaPrefix ? { DATABASE_SCHEMA_PREFIX: schemaPrefix } : {}),
  };
  const cleanUp = async () => {
    rmSync(dataDir, { recursive: true, force: true });
    if (schemaPrefix) await dropSchemas(process.env.DATABASE_URL!, schemaPrefix);
  };
  const config = loadConfig(env);
  let stack: ProcessStack;
  try {
    stack = await launchProcesses(config, { env });
  } catch (error) {
    await cleanUp();
    throw error;
  }
  return {
    ...stack,
    config,
    secret,
    async stop() {
      await stack.stop();
      await cleanUp();
    },
  };
}
