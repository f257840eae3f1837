/**
 * `npm start`: the gateway in one process, the five subgraphs (each on its own port) in another, one terminal.
 * Waits until all are ready, seeds the demo tenant on first run, prints an example query; Ctrl-C stops all.
 */
import { ConfigError, loadConfig, SUBGRAPHS, type Config } from '@jarvis/platform/config';
import { DEV_LOGIN_GRANT } from '@jarvis/platform/contracts';
import { ensureConsoleBuilt } from './console-build.ts';
import { launchProcesses, type ProcessStack } from './processes.ts';
import { ANSWER_SUBSCRIPTION, APPROVE_RUN_MUTATION, ASK_MUTATION, DEMO_OWNER, DEMO_SLUG, EXAMPLE_QUERY, RUN_EVENTS_SUBSCRIPTION, RUN_QUERY, SEARCH_QUERY, seedDemo, START_RUN_MUTATION } from './seed.ts';

// npm start is the local, embedded default: sign-in by email alone is on unless the environment says otherwise.
process.env.AUTH_DEV_LOGIN ??= 'true';

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
// Ctrl-C while the services start must stop them too: the launch stops what it started when aborted.
const starting = new AbortController();
let launching: Promise<ProcessStack> | undefined;

async function shutdown(exitCode: number) {
  if (stopping) return;
  stopping = true;
  starting.abort();
  await launching?.catch(() => undefined);
  await stack?.stop();
  process.exit(exitCode);
}
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

try {
  // Before the gateway starts, which serves the console's build if there is one.
  const consoleBuild = await ensureConsoleBuilt();
  launching = launchProcesses(config, {
    signal: starting.signal,
    onUnexpectedExit: (name, code) => {
      console.error(`${name} exited (${code}); stopped the others`);
      process.exit(1);
    },
  });
  stack = await launching;
  const readyMs = performance.now() - startedAt;
  const tokenUrl = `${stack.baseUrl('tenancy')}/oauth/token`;
  const seed = config.SEED_DEMO && config.AUTH_DEV_LOGIN ? await seedDemo(stack.gatewayUrl, tokenUrl, { operatorToken: stack.operatorToken }) : undefined;
  printBanner(stack, readyMs, consoleBuild, seed);
} catch (error) {
  if (!stopping) {
    console.error(`start-up failed: ${(error as Error).message}`);
    await shutdown(1);
  }
}

function printBanner(stack: ProcessStack, readyMs: number, consoleBuild: string, seed?: { created: boolean }) {
  const lines = [
    '',
    `Jarvis is up in ${(readyMs / 1000).toFixed(1)}s: ${stack.gatewayUrl}`,
    `  subgraphs: ${SUBGRAPHS.map((s) => `${s.name} ${stack.baseUrl(s.name)}/graphql`).join(', ')}`,
    `  data: ${config.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.DATA_DIR}`}`,
    `  ${consoleBuild}`,
    `  web console: ${stack.gatewayUrl.replace(/\/graphql$/, '/')}${config.NODE_ENV === 'production' ? '' : `   GraphiQL: ${stack.gatewayUrl.replace(/\/graphql$/, '/graphiql')}`}`,
  ];
  const tokenUrl = `${stack.baseUrl('tenancy')}/oauth/token`;
  if (seed) {
    const curl = (query: string, variables?: Record<string, string>) =>
      `  curl -s ${stack.gatewayUrl} -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '${JSON.stringify({ query: query.replace(/\s+/g, ' '), variables })}'`;
    lines.push(
      `  demo tenant "${DEMO_SLUG}" ${seed.created ? 'created' : 'already there'}, owner ${DEMO_OWNER}`,
      '',
      'Sign in as the demo owner (dev-login: on under npm start, AUTH_DEV_LOGIN=false turns it off):',
      `  TOKEN=$(curl -s ${tokenUrl} -d grant_type=${DEV_LOGIN_GRANT} -d tenant=${DEMO_SLUG} -d email=${DEMO_OWNER} | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`,
      'and ask for your tenant across all five subgraphs:',
      curl(EXAMPLE_QUERY),
      'or search the demo handbook:',
      curl(SEARCH_QUERY),
      'or ask it a question:',
      curl(ASK_MUTATION),
      `and follow the answer as it streams, over WebSocket (graphql-ws, connection_init {"authorization": "Bearer $TOKEN"}) at ${stack.gatewayUrl.replace(/^http/, 'ws')}:`,
      `  ${ANSWER_SUBSCRIPTION}  with {"id": "<answer id>"}`,
      'Run the demo workflow (it branches, loops, searches twice at once, asks the model, then waits for approval):',
      curl(START_RUN_MUTATION),
      `follow it over WebSocket:  ${RUN_EVENTS_SUBSCRIPTION}  with {"id": "<run id>"}`,
      'approve it, and see it DONE:',
      curl(APPROVE_RUN_MUTATION, { id: '<run id>' }),
      curl(RUN_QUERY, { id: '<run id>' }),
    );
  } else {
    lines.push('', `Sign in at ${tokenUrl} (OAuth2); callers without a token see public fields only.`);
  }
  lines.push('', 'Ctrl-C stops everything.', '');
  console.log(lines.join('\n'));
}
