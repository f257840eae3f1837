/**
 * `npm start`: the gateway and the four subgraphs, each its own process on its own port, in one terminal.
 * Waits until all are ready, seeds the demo tenant on first run, prints an example query; Ctrl-C stops all.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, pgliteTemplate, servicePort, SUBGRAPHS, type Config, type ServiceName } from '@jarvis/platform';
import { EXAMPLE_QUERY, seedDemo } from './seed.ts';

const SERVICES: ServiceName[] = [...SUBGRAPHS.map((s) => s.name), 'gateway'];
const SERVE = fileURLToPath(new URL('./serve.ts', import.meta.url));

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}

const startedAt = performance.now();
const children = new Map<ServiceName, ChildProcess>();
let stopping = false;

const base = (name: ServiceName) => `http://${displayHost(config.HOST)}:${servicePort(config, name)}`;
// The committed supergraph names the default ports; point the gateway at the ones configured here.
const subgraphUrls = SUBGRAPHS.map(({ name }) => `${name}=${base(name)}/graphql`).join(',');

// Initialise the embedded database template once (cached across runs) rather than in four processes at once.
if (!config.DATABASE_URL) await pgliteTemplate();

for (const name of SERVICES) {
  const env = name === 'gateway' ? { ...process.env, SUBGRAPH_URLS: process.env.SUBGRAPH_URLS || subgraphUrls } : process.env;
  const child = fork(SERVE, [name], { env, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.set(name, child);
  child.once('exit', (code, signal) => {
    children.delete(name);
    if (!stopping) {
      console.error(`${name} exited (${signal ?? code}); stopping the others`);
      void stopAll(1);
    } else if (children.size === 0) {
      process.exit(process.exitCode ?? 0);
    }
  });
}

process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));

async function stopAll(exitCode: number) {
  if (stopping) return;
  stopping = true;
  process.exitCode = exitCode;
  for (const child of children.values()) child.kill('SIGTERM');
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
    process.exit(exitCode || 1);
  }, config.SHUTDOWN_TIMEOUT_MS + 2_000).unref();
  if (children.size === 0) process.exit(exitCode);
}

try {
  await Promise.all(SERVICES.map((name) => waitUntilReady(`${base(name)}/readyz`, 120_000)));
  const gatewayUrl = `${base('gateway')}/graphql`;
  const ready = performance.now() - startedAt;
  const seed = config.SEED_DEMO ? await seedDemo(gatewayUrl) : undefined;
  printBanner(gatewayUrl, ready, seed);
} catch (error) {
  if (!stopping) {
    console.error(`start-up failed: ${(error as Error).message}`);
    await stopAll(1);
  }
}

async function waitUntilReady(url: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!stopping) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs / 1000}s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function displayHost(host: string) {
  return host === '0.0.0.0' || host === '::' ? 'localhost' : host;
}

function printBanner(gatewayUrl: string, readyMs: number, seed?: { tenantId: string; created: boolean }) {
  const lines = [
    '',
    `Jarvis is up in ${(readyMs / 1000).toFixed(1)}s: ${gatewayUrl}`,
    `  subgraphs: ${SUBGRAPHS.map((s) => `${s.name} ${base(s.name)}/graphql`).join(', ')}`,
    `  data: ${config.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.DATA_DIR}`}`,
  ];
  if (seed) {
    const body = JSON.stringify({ query: EXAMPLE_QUERY.replace(/\s+/g, ' '), variables: { id: seed.tenantId } });
    lines.push(
      `  demo tenant "demo" ${seed.created ? 'created' : 'already there'}: ${seed.tenantId}`,
      '',
      'Try the cross-subgraph query:',
      `  curl -s ${gatewayUrl} -H 'content-type: application/json' -d '${body}'`,
    );
  }
  lines.push('', 'Ctrl-C stops everything.', '');
  console.log(lines.join('\n'));
}
