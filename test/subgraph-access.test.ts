import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { ANONYMOUS, PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { databaseVariants } from '@jarvis/platform/testing';
import { startTestStack, type TestStack } from './helpers.ts';

const ENTITIES = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Tenant { id } } }`;

describe('subgraphs answer only the gateway', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!);
  });
  after(() => stack?.close());

  const secret = () => new TextEncoder().encode(stack.config.INTERNAL_AUTH_SECRET!);
  const claims = () => new SignJWT({ principal: ANONYMOUS }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();

  async function callDirectly(url: string, token?: string, tenantId: string = crypto.randomUUID(), query = ENTITIES) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { [PRINCIPAL_HEADER]: token } : {}) },
      body: JSON.stringify({ query, variables: { r: [{ __typename: 'Tenant', id: tenantId }] } }),
    });
    type Answer = { data?: unknown; errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string } }[] };
    return { status: response.status, body: (await response.json()) as Answer };
  }

  const forgeries: Record<string, () => Promise<string | undefined>> = {
    'no principal header': async () => undefined,
    'a principal signed with another secret': () => principalSigner('x'.repeat(40)).sign(ANONYMOUS),
    'an expired principal': () =>
      claims().setIssuer('jarvis-gateway').setAudience('jarvis-subgraphs').setExpirationTime(Math.floor(Date.now() / 1000) - 5).sign(secret()),
    'a principal for another audience': () =>
      claims().setIssuer('jarvis-gateway').setAudience('someone-else').setExpirationTime('1m').sign(secret()),
    'an unsigned (alg none) principal': async () =>
      new UnsecuredJWT({ principal: ANONYMOUS }).setIssuer('jarvis-gateway').setAudience('jarvis-subgraphs').setExpirationTime('1m').encode(),
    'a tampered payload': async () => {
      const [header, , signature] = (await principalSigner(stack.config.INTERNAL_AUTH_SECRET!).sign(ANONYMOUS)).split('.');
      const payload = Buffer.from(JSON.stringify({ principal: { ...ANONYMOUS, tenantId: crypto.randomUUID() } })).toString('base64url');
      return `${header}.${payload}.${signature}`;
    },
  };

  for (const [name, forge] of Object.entries(forgeries)) {
    test(`${name}: every subgraph refuses with 401 UNAUTHENTICATED, _entities included`, async () => {
      const token = await forge();
      for (const [subgraph, url] of Object.entries(stack.subgraphUrls)) {
        const { status, body } = await callDirectly(url, token);
        assert.equal(status, 401, `${subgraph}: ${JSON.stringify(body)}`);
        assert.equal(body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
        assert.equal(body.data, undefined);
      }
    });
  }

  test('a principal signed with the shared secret is accepted; health endpoints need none', async () => {
    const tenantId = crypto.randomUUID();
    const token = await principalSigner(stack.config.INTERNAL_AUTH_SECRET!).sign({ ...ANONYMOUS, tenantId });
    for (const url of Object.values(stack.subgraphUrls)) {
      const { status, body } = await callDirectly(url, token, tenantId);
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.errors, undefined);
      assert.equal((await fetch(url.replace(/\/graphql$/, '/healthz'))).status, 200);
    }
  });

  // One field per subgraph here; test/subgraph-policies.test.ts checks every @policy field of every subgraph.
  const POLICY_FIELDS = [
    { subgraph: 'tenancy', query: 'mutation { createGroup(input: { name: "g" }) { id } }', path: ['createGroup'], permission: 'members:manage' },
    { subgraph: 'knowledge', query: 'mutation { createKnowledgeBase(input: { name: "kb" }) { id } }', path: ['createKnowledgeBase'], permission: 'kb:write' },
    {
      subgraph: 'chat',
      query: `query($r: [_Any!]!) { _entities(representations: $r) { ... on Tenant { conversations { id } } } }`,
      path: ['_entities', '0', 'conversations'],
      permission: 'chat:use',
    },
    { subgraph: 'usage', query: 'mutation { setQuota(input: {}) { plan } }', path: ['setQuota'], permission: 'tenant:admin' },
    {
      subgraph: 'agents',
      query: 'mutation { createDefinition(input: { name: "d", kind: AGENT, source: "instructions: x" }) { id } }',
      path: ['createDefinition'],
      permission: 'agents:write',
    },
  ];

  test("a field's @policy holds at the subgraph: a signed principal without the permission is refused there as services refuse it", async () => {
    const tenantId = crypto.randomUUID();
    const token = await principalSigner(stack.config.INTERNAL_AUTH_SECRET!).sign({ ...ANONYMOUS, tenantId, permissions: ['kb:read', 'members:read'] });
    for (const { subgraph, query, path, permission } of POLICY_FIELDS) {
      const { status, body } = await callDirectly(stack.subgraphUrls[subgraph]!, token, tenantId, query);
      assert.equal(status, 200, subgraph);
      assert.deepEqual(
        body.errors?.map(({ message, path, extensions }) => ({ message, path: path?.map(String), code: extensions?.code })),
        [{ message: `this needs the ${permission} permission`, path, code: 'FORBIDDEN' }],
        subgraph,
      );
    }
  });

  test('a signed principal holding the permission gets past the check at the subgraph', async () => {
    const tenantId = crypto.randomUUID();
    const token = await principalSigner(stack.config.INTERNAL_AUTH_SECRET!).sign({ ...ANONYMOUS, tenantId, permissions: ['chat:use'] });
    const { body } = await callDirectly(stack.subgraphUrls.chat!, token, tenantId, `{ conversation(id: "${crypto.randomUUID()}") { id } }`);
    assert.deepEqual(body, { data: { conversation: null } });
  });

  test("the tenancy issuer's JWKS is public and holds public keys only", async () => {
    const response = await fetch(stack.subgraphUrls.tenancy!.replace(/\/graphql$/, '/.well-known/jwks.json'));
    assert.equal(response.status, 200);
    const { keys } = (await response.json()) as { keys: { kid: string; alg: string; d?: string }[] };
    assert.ok(keys.length >= 1);
    assert.ok(keys.every((key) => key.alg === 'ES256' && key.kid && key.d === undefined));
  });
});
