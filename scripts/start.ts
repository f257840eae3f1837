/**
 * `npm start`: the gateway in one process, the four subgraphs (each on its own port) in another, one terminal.
 * Waits until all are ready, seeds the demo tenant on first run, prints an example query; Ctrl-C stops all.
 */
import { ConfigError, DEV_LOGIN_GRANT, loadConfig, SUBGRAPHS, type Config } from '@jarvis/platform';
import { launchProcesses, type ProcessStack } from './processes.ts';
import { EXAMPLE_QUERY, seedDemo } from './seed.ts';

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}

const startedAt = performance.now();
let stack: ProcessStack | undefined;
let stopping = false;

async function shutdown(exitCode: number) {
  if (stopping) return;
  stopping = true;
  await stack?.stop();
  process.exit(exitCode);
}
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

try {
  stack = await launchProcesses(config, {
    onUnexpectedExit: (name, code) => {
      console.error(`${name} exited (${code}); stopped the others`);
      process.exit(1);
    },
  });
  const readyMs = performance.now() - startedAt;
  const seed = config.SEED_DEMO ? await seedDemo(stack.gatewayUrl) : undefined;
  printBanner(stack, readyMs, seed);
} catch (error) {
  if (!stopping) {
    console.error(`start-up failed: ${(error as Error).message}`);
    await shutdown(1);
  }
}

function printBanner(stack: ProcessStack, readyMs: number, seed?: { tenantId: string; created: boolean }) {
  const lines = [
    '',
    `Jarvis is up in ${(readyMs / 1000).toFixed(1)}s: ${stack.gatewayUrl}`,
    `  subgraphs: ${SUBGRAPHS.map((s) => `${s.name} ${stack.baseUrl(s.name)}/graphql`).join(', ')}`,
    `  data: ${config.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.DATA_DIR}`}`,
  ];
  if (seed) {
    const body = JSON.stringify({ query: EXAMPLE_QUERY.replace(/\s+/g, ' '), variables: { id: seed.tenantId } });
    lines.push(
      `  demo tenant "demo" ${seed.created ? 'created' : 'already there'}: ${seed.tenantId}`,
      '',
      'Try the cross-subgraph query:',
      `  curl -s ${stack.gatewayUrl} -H 'content-type: application/json' -d '${body}'`,
    );
  }
  const tokenUrl = `${stack.baseUrl('tenancy')}/oauth/token`;
  lines.push(
    '',
    config.AUTH_DEV_LOGIN
      ? `Get a bearer token for the demo owner (dev-login is on):\n  curl -s ${tokenUrl} -d grant_type=${DEV_LOGIN_GRANT} -d tenant=demo -d email=owner@demo.test`
      : 'Callers are anonymous until they send a bearer token; AUTH_DEV_LOGIN=true npm start enables local sign-in.',
    '',
    'Ctrl-C stops everything.',
    '',
  );
  console.log(lines.join('\n'));
}
