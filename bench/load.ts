/**
 * What the benchmarks share: the settings of the load benchmarks — BENCH_DURATION (seconds per scenario,
 * default 10) and BENCH_CONNECTIONS (default 50) — one GraphQL query POSTed over and over by autocannon (and a
 * checked, warmed-up measurement of it), the lines that say what machine the figures come from and how loaded
 * it was, the percentiles and means they report, and the process stack (as under `npm start`) of those that
 * run one, with the principal its gateway derives from a token.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { createAuthenticator } from '@jarvis/gateway/authentication';
import { postGraphQL } from '@jarvis/platform/client';
import { loadConfig, type Config } from '@jarvis/platform/config';
import { dropSchemas, freeServicePorts, uniqueSchemaPrefix } from '@jarvis/platform/testing';
import { launchProcesses, type ProcessStack } from '../scripts/processes.ts';

export const duration = Number(process.env.BENCH_DURATION ?? 10);
export const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);

/** `query` POSTed to `url` from `connections` connections for `seconds`; `onBody` sees every response body. */
export function postLoad(url: string, query: string, headers: Record<string, string> = {}, seconds = duration, onBody?: (body: string) => void) {
  return autocannon({
    url,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query }),
    ...(onBody ? { requests: [{ onResponse: (_status: number, body: string) => onBody(body) }] } : {}),
  });
}

export interface Measured {
  /** The answer's `data`, from the check before the load. */
  data: unknown;
  rps: number;
  p50: number;
  p99: number;
  /** Requests answered under load. */
  requests: number;
  /** CPU seconds each of the watched processes used under load. */
  cpu: number[];
}

/**
 * `query` at `url`: answered once with data and no errors, 2 s of warm-up, then BENCH_DURATION under load in
 * which every response must be 2xx without an `errors` member; throws, naming `what`, otherwise. `pids` are
 * processes whose CPU time under load is reported.
 */
export async function measure(what: string, url: string, query: string, headers: Record<string, string> = {}, pids: number[] = []): Promise<Measured> {
  const check = await postGraphQL(url, query, {}, headers);
  if (check.body.errors?.length || !check.body.data) throw new Error(`${what}: ${JSON.stringify(check.body)}`);
  await postLoad(url, query, headers, 2);
  let withErrors = 0;
  const cpuBefore = cpuSeconds(pids);
  const result = await postLoad(url, query, headers, duration, (body) => {
    if (body.includes('"errors":')) withErrors++;
  });
  const cpu = cpuSeconds(pids).map((used, i) => used - cpuBefore[i]!);
  if (result.non2xx || result.errors || withErrors) {
    throw new Error(`${what}: ${result.non2xx} non-2xx, ${result.errors} failed requests, ${withErrors} answers with errors`);
  }
  const { requests, latency } = result;
  return { data: check.body.data, rps: requests.average, p50: latency.p50, p99: latency.p99, requests: requests.total, cpu };
}

let clockTicks: number | undefined;

/** CPU seconds (user + system) each process has used so far, from /proc: Linux only, NaN elsewhere or once it has gone. */
export function cpuSeconds(pids: number[]): number[] {
  return pids.map((pid) => {
    try {
      clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / clockTicks;
    } catch {
      return NaN;
    }
  });
}

/** The machine the figures come from. */
export const hardware = () => `${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
/** The machine and the load settings. */
export const machine = () => `${hardware()}, ${connections} connections, ${duration}s each`;
/** The load average over 1, 5 and 15 minutes, as `uptime` shows it. */
export const loadAverage = () => loadavg().map((load) => load.toFixed(2)).join(' / ');

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
  const ports = options.freePorts ? await freeServicePorts() : {};
  const env = {
    ...process.env,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    INTERNAL_AUTH_SECRET: secret,
    AUTH_DEV_LOGIN: 'true',
    ...extraEnv,
    ...ports,
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

/** The principal the stack's gateway derives from an Authorization header, by the gateway's own code. */
export function stackAuthenticator(stack: BenchStack) {
  const { TOKEN_ISSUER: issuer, TOKEN_AUDIENCE: audience } = stack.config;
  return createAuthenticator([{ issuer, audience, jwksUrl: `${stack.baseUrl('tenancy')}/.well-known/jwks.json` }]);
}
