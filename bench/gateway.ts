/**
 * `npm run bench`: requests/s and latency of queries through the gateway and against one subgraph alone,
 * in one run on this machine, processes laid out as under `npm start`. Figures go to BENCHMARKS.md.
 *   BENCH_DURATION (seconds per scenario, default 10), BENCH_CONNECTIONS (default 50).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ANONYMOUS, graphql, loadConfig, postGraphQL, PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform';
import { launchProcesses } from '../scripts/processes.ts';
import { seedDemo } from '../scripts/seed.ts';

const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);

const QUERIES = {
  fourSubgraphs: `query($id: ID!) { tenant(id: $id) { name knowledgeBases { name } conversations { title } usage { totals { metric quantity } } } }`,
  twoSubgraphs: `query($id: ID!) { tenant(id: $id) { name knowledgeBases { name description } } }`,
  oneSubgraph: `query($id: ID!) { tenant(id: $id) { name slug users { email } } }`,
};

/** A local token issuer, so one scenario measures the gateway verifying a bearer JWT on every request. */
async function startIssuer() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const server = Fastify();
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
  server.get('/jwks.json', async () => ({ keys: [jwk] }));
  const jwksUrl = `${await server.listen({ port: 0, host: '127.0.0.1' })}/jwks.json`;
  const issuer = 'https://bench.jarvis.test';
  const tokenFor = (tenantId: string) =>
    new SignJWT({ tid: tenantId, roles: ['member'], scope: 'kb:read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
      .setSubject(randomUUID())
      .setIssuer(issuer)
      .setAudience('jarvis-bench')
      .setExpirationTime('30m')
      .sign(privateKey);
  return { env: { JWT_ISSUER: issuer, JWT_AUDIENCE: 'jarvis-bench', JWT_JWKS_URL: jwksUrl }, tokenFor, close: () => server.close() };
}

const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-bench-'));
const secret = randomBytes(32).toString('base64url');
const issuer = await startIssuer();
const env = { ...process.env, ...issuer.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn', INTERNAL_AUTH_SECRET: secret };
const config = loadConfig(env);
const stack = await launchProcesses(config, { env });

try {
  const { tenantId } = await seedDemo(stack.gatewayUrl);
  for (let i = 0; i < 4; i++) {
    await graphql(stack.gatewayUrl, `mutation($kb: CreateKnowledgeBaseInput!, $c: CreateConversationInput!) {
      createKnowledgeBase(input: $kb) { id } createConversation(input: $c) { id } }`, {
      kb: { tenantId, name: `Collection ${i}`, description: 'bench' },
      c: { tenantId, title: `Conversation ${i}` },
    });
  }
  const tenancyUrl = `${stack.baseUrl('tenancy')}/graphql`;
  // Straight to the subgraph, the request carries what the gateway would add: a signed principal.
  const signed = async () => ({ [PRINCIPAL_HEADER]: await principalSigner(secret).sign(ANONYMOUS) });
  const none = async () => ({});
  const bearer = async () => ({ authorization: `Bearer ${await issuer.tokenFor(tenantId)}` });
  const scenarios = [
    { name: 'four-subgraph query via gateway', url: stack.gatewayUrl, query: QUERIES.fourSubgraphs, headers: none },
    { name: 'two-subgraph query via gateway', url: stack.gatewayUrl, query: QUERIES.twoSubgraphs, headers: none },
    { name: 'one-subgraph query via gateway', url: stack.gatewayUrl, query: QUERIES.oneSubgraph, headers: none },
    { name: 'the same with a bearer JWT verified', url: stack.gatewayUrl, query: QUERIES.oneSubgraph, headers: bearer },
    { name: 'one-subgraph query, tenancy alone', url: tenancyUrl, query: QUERIES.oneSubgraph, headers: signed },
  ];

  const rows = [];
  for (const scenario of scenarios) {
    const body = JSON.stringify({ query: scenario.query, variables: { id: tenantId } });
    const headers = await scenario.headers();
    const check = await postGraphQL(scenario.url, scenario.query, { id: tenantId }, headers);
    if (check.body.errors || !check.body.data) throw new Error(`${scenario.name}: ${JSON.stringify(check.body)}`);
    await run(scenario.url, body, headers, 2); // warm-up
    const result = await run(scenario.url, body, headers, duration);
    if (result.non2xx || result.errors) throw new Error(`${scenario.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    rows.push({ name: scenario.name, rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 });
  }

  const alone = rows.at(-1)!.rps;
  console.log(`\n${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${connections} connections, ${duration}s each\n`);
  console.log('| scenario | req/s | p50 ms | p99 ms | vs subgraph alone |');
  console.log('|---|---:|---:|---:|---:|');
  for (const row of rows) {
    console.log(`| ${row.name} | ${row.rps.toFixed(0)} | ${row.p50} | ${row.p99} | ${(row.rps / alone).toFixed(2)}× |`);
  }
} finally {
  await stack.stop();
  await issuer.close();
  rmSync(dataDir, { recursive: true, force: true });
}

function run(url: string, body: string, headers: Record<string, string>, seconds: number) {
  return autocannon({
    url,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body,
  });
}
