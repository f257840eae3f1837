/**
 * `npm run bench`: requests/s and latency of queries through the gateway and against one subgraph alone,
 * in one run on this machine, processes laid out as under `npm start`. Figures go to BENCHMARKS.md.
 *   BENCH_DURATION (seconds per scenario, default 10), BENCH_CONNECTIONS (default 50).
 */
import { randomUUID } from 'node:crypto';
import { bearer, devLogin, graphql, postGraphQL, PRINCIPAL_HEADER, principalSigner, type Principal } from '@jarvis/platform';
import { DEMO_SLUG, seedDemo } from '../scripts/seed.ts';
import { duration, launchBenchStack, machine, postLoad } from './load.ts';

const QUERIES = {
  fourSubgraphs: `{ tenant { name knowledgeBases { name } conversations { title } usage { totals { metric quantity } } } }`,
  twoSubgraphs: `{ tenant { name knowledgeBases { name description } } }`,
  oneSubgraph: `{ tenant { name slug users { email } } }`,
  /** `usage` needs usage:read, which a viewer lacks: removed before planning, null in the answer. */
  withRefusedField: `{ tenant { name slug users { email } usage { totals { quantity } } } }`,
  /** Public: no directive applies, so an anonymous request skips authentication and authorization. */
  public: `{ permissions { name description } }`,
};

const stack = await launchBenchStack();

try {
  const tokenUrl = `${stack.baseUrl('tenancy')}/oauth/token`;
  // ENTERPRISE: its request rate (PLAN_QUOTAS) is above what this machine can serve, so the plan never refuses.
  const { token } = await seedDemo(stack.gatewayUrl, tokenUrl, 'ENTERPRISE');
  const owner = bearer(token);
  for (let i = 0; i < 4; i++) {
    await graphql(stack.gatewayUrl, `mutation($kb: CreateKnowledgeBaseInput!, $c: CreateConversationInput!) {
      createKnowledgeBase(input: $kb) { id } createConversation(input: $c) { id } }`, {
      kb: { name: `Collection ${i}`, description: 'bench' },
      c: { title: `Conversation ${i}` },
    }, owner);
  }
  const apiKey = await createApiKey(stack.gatewayUrl, owner);
  const viewer = bearer(await viewerToken(stack.gatewayUrl, tokenUrl, owner));
  const viewerHeaders = async () => viewer;
  const { me } = await graphql<{ me: { id: string; tenant: { id: string }; permissions: string[] } }>(
    stack.gatewayUrl, `{ me { id tenant { id } permissions } }`, {}, owner);
  const tenancyUrl = `${stack.baseUrl('tenancy')}/graphql`;
  // Straight to the subgraph, the request carries what the gateway would add: the owner's signed principal.
  const principal: Principal = { tenantId: me.tenant.id, userId: me.id, roles: ['owner'], scopes: [], permissions: me.permissions, isolation: 'SHARED' };
  const signed = async () => ({ [PRINCIPAL_HEADER]: await principalSigner(stack.secret).sign(principal) });
  const none = async () => ({});
  const scenarios = [
    { name: 'four-subgraph query via gateway, bearer JWT', url: stack.gatewayUrl, query: QUERIES.fourSubgraphs, headers: async () => owner },
    { name: 'two-subgraph query via gateway, bearer JWT', url: stack.gatewayUrl, query: QUERIES.twoSubgraphs, headers: async () => owner },
    { name: 'one-subgraph query via gateway, bearer JWT', url: stack.gatewayUrl, query: QUERIES.oneSubgraph, headers: async () => owner },
    { name: 'the same with an API key', url: stack.gatewayUrl, query: QUERIES.oneSubgraph, headers: async () => bearer(apiKey) },
    { name: 'the same plus a field refused to a viewer', url: stack.gatewayUrl, query: QUERIES.withRefusedField, headers: viewerHeaders },
    { name: 'public query via gateway, anonymous', url: stack.gatewayUrl, query: QUERIES.public, headers: none },
    { name: 'public query via gateway, bearer JWT', url: stack.gatewayUrl, query: QUERIES.public, headers: async () => owner },
    { name: 'one-subgraph query, tenancy alone', url: tenancyUrl, query: QUERIES.oneSubgraph, headers: signed },
  ];

  const rows = [];
  for (const scenario of scenarios) {
    const headers = await scenario.headers();
    const check = await postGraphQL(scenario.url, scenario.query, {}, headers);
    const expectedErrors = scenario.headers === viewerHeaders ? 1 : 0;
    if ((check.body.errors?.length ?? 0) !== expectedErrors || !check.body.data) throw new Error(`${scenario.name}: ${JSON.stringify(check.body)}`);
    await postLoad(scenario.url, scenario.query, headers, 2); // warm-up
    const result = await postLoad(scenario.url, scenario.query, headers, duration);
    if (result.non2xx || result.errors) throw new Error(`${scenario.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    rows.push({ name: scenario.name, rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 });
  }

  const alone = rows.at(-1)!.rps;
  console.log(`\n${machine()}\n`);
  console.log('| scenario | req/s | p50 ms | p99 ms | vs subgraph alone |');
  console.log('|---|---:|---:|---:|---:|');
  for (const row of rows) {
    console.log(`| ${row.name} | ${row.rps.toFixed(0)} | ${row.p50} | ${row.p99} | ${(row.rps / alone).toFixed(2)}× |`);
  }
} finally {
  await stack.stop();
}

/** A service account with the owner's read access and an API key for it, made through the API. */
async function createApiKey(gatewayUrl: string, headers: Record<string, string>): Promise<string> {
  const { createServiceAccount } = await graphql<{ createServiceAccount: { id: string } }>(
    gatewayUrl, `mutation($name: String!) { createServiceAccount(input: { name: $name, roles: ["admin"] }) { id } }`, { name: `bench-${randomUUID()}` }, headers);
  const { createApiKey: created } = await graphql<{ createApiKey: { secret: string } }>(
    gatewayUrl,
    `mutation($id: ID!) { createApiKey(input: { serviceAccountId: $id, name: "bench" }) { secret } }`,
    { id: createServiceAccount.id },
    headers,
  );
  return created.secret;
}

/** A member invited with the viewer role, signed in. */
async function viewerToken(gatewayUrl: string, tokenUrl: string, headers: Record<string, string>): Promise<string> {
  const email = `viewer-${randomUUID()}@demo.test`;
  const { inviteUser } = await graphql<{ inviteUser: { token: string } }>(
    gatewayUrl, `mutation($email: String!) { inviteUser(input: { email: $email, role: "viewer" }) { token } }`, { email }, headers);
  await graphql(gatewayUrl, `mutation($token: String!) { acceptInvitation(input: { token: $token, name: "Vera Viewer" }) { id } }`, {
    token: inviteUser.token,
  });
  return devLogin(tokenUrl, DEMO_SLUG, email);
}
