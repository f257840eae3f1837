/** Runs the gateway and the four subgraphs as child processes (`npm start`, the benchmarks). */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { servicePort, SERVICE_NAMES, SUBGRAPHS, trustTenancyIssuer, type Config, type ServiceName } from '@jarvis/platform/config';
import { needsNewEmbeddedDatabase, pgliteTemplate } from '@jarvis/platform/db';

/**
 * The subgraphs share one process and the gateway has another: measured, that halves start-up against one
 * process per service (containers' layout) with the same throughput (BENCHMARKS.md).
 */
const PROCESS_GROUPS: ServiceName[][] = [SUBGRAPHS.map((s) => s.name), ['gateway']];
const SERVE = fileURLToPath(new URL('./serve.ts', import.meta.url));

export interface ProcessStack {
  baseUrl(name: ServiceName): string;
  gatewayUrl: string;
  /** The process id of the process running `name` (the subgraphs share one). */
  pidOf(name: ServiceName): number | undefined;
  /** The operator credential the gateway accepts: the deployment's OPERATOR_TOKEN, or one made for this launch. */
  operatorToken: string;
  /** Stops every process: SIGTERM, then SIGKILL for any still running after the shutdown timeout. */
  stop(): Promise<void>;
}

export interface LaunchOptions {
  env?: NodeJS.ProcessEnv;
  /** Called once if a service exits on its own; the others are stopped first. */
  onUnexpectedExit?: (name: ServiceName, code: number | string | null) => void;
  readyTimeoutMs?: number;
  /** Aborted while the services start (Ctrl-C): they are stopped and the launch rejects. */
  signal?: AbortSignal;
}

export async function launchProcesses(config: Config, options: LaunchOptions = {}): Promise<ProcessStack> {
  // Processes started together share a fresh secret and operator credential unless the deployment names them.
  const fresh = () => randomBytes(32).toString('base64url');
  const env: NodeJS.ProcessEnv = { INTERNAL_AUTH_SECRET: fresh(), OPERATOR_TOKEN: fresh(), ...(options.env ?? process.env) };
  const baseUrl = (name: ServiceName) => `http://${displayHost(config.HOST)}:${servicePort(config, name)}`;
  // The committed supergraph names the default ports; point the gateway at the ones configured here.
  const subgraphUrls = SUBGRAPHS.map(({ name }) => `${name}=${baseUrl(name)}/graphql`).join(',');

  // A first run builds the embedded database template once here rather than in four processes at once.
  const newDatabases = SUBGRAPHS.some(({ name }) => needsNewEmbeddedDatabase(config.DATA_DIR, name));
  if (!config.DATABASE_URL && newDatabases) await pgliteTemplate();

  const children = new Map<ServiceName, ChildProcess>();
  let stopping = false;
  for (const group of PROCESS_GROUPS) {
    // Every service is told where the subgraphs are: the gateway plans across them, chat asks knowledge's search.
    const located = { ...env, SUBGRAPH_URLS: env.SUBGRAPH_URLS || subgraphUrls };
    const childEnv = group.includes('gateway') ? { ...located, ...trustTenancyIssuer(config, baseUrl('tenancy')) } : located;
    const child = fork(SERVE, group, { env: childEnv, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    for (const name of group) children.set(name, child);
    child.once('exit', (code, signal) => {
      for (const name of group) children.delete(name);
      if (!stopping) void stop().then(() => options.onUnexpectedExit?.(group.join('+') as ServiceName, signal ?? code));
    });
  }

  async function terminate(names: ServiceName[]) {
    const running = [...new Set(names.flatMap((name) => children.get(name) ?? []))];
    const exits = running.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined));
    for (const child of running) child.kill('SIGTERM');
    const killer = setTimeout(() => running.forEach((child) => child.kill('SIGKILL')), config.SHUTDOWN_TIMEOUT_MS + 2_000);
    await Promise.all(exits);
    clearTimeout(killer);
  }

  /** The gateway first, so its in-flight requests can still reach the subgraphs; then the subgraphs. */
  async function stop() {
    stopping = true;
    await terminate(['gateway']);
    await terminate(SERVICE_NAMES.filter((name) => name !== 'gateway'));
  }

  try {
    const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
    const cancelled = () => stopping || options.signal?.aborted === true;
    await Promise.all(SERVICE_NAMES.map((name) => waitUntilReady(`${baseUrl(name)}/readyz`, readyTimeoutMs, cancelled)));
  } catch (error) {
    await stop();
    throw error;
  }
  return { baseUrl, gatewayUrl: `${baseUrl('gateway')}/graphql`, operatorToken: env.OPERATOR_TOKEN!, pidOf: (name) => children.get(name)?.pid, stop };
}

async function waitUntilReady(url: string, timeoutMs: number, cancelled: () => boolean) {
  const deadline = Date.now() + timeoutMs;
  while (!cancelled()) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs / 1000}s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('start-up was interrupted, or a service exited');
}

function displayHost(host: string) {
  return host === '0.0.0.0' || host === '::' ? 'localhost' : host;
}
