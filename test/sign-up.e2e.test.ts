/**
 * Self-service sign-up gets the FREE plan and SHARED isolation; another plan or isolation, and plan changes, are
 * the operator's acts (OPERATOR_TOKEN), each audited. Anonymous callers have a request rate per address.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { bearer, devLogin } from '@jarvis/platform/client';
import { PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { databaseVariants } from '@jarvis/platform/testing';
import { as, CREATE_TENANT, errorCodes, operatorHeaders, respond, signUp, startTestStack, type TestStack } from './helpers.ts';

const TENANT = `{ tenant { plan isolation auditEvents { action actor detail } } }`;
const CHANGE_PLAN = `mutation($input: ChangeTenantPlanInput!) { changeTenantPlan(input: $input) { id plan } }`;

type TenantView = { tenant: { plan: string; isolation: string; auditEvents: { action: string; actor: string; detail: string }[] } };

function newTenant(overrides: Record<string, unknown> = {}) {
  const slug = `signup-${randomUUID().slice(0, 8)}`;
  return { slug, input: { name: slug, slug, owner: { email: `owner@${slug}.test`, name: 'Owner' }, ...overrides } };
}

for (const variant of databaseVariants()) {
  describe(`sign-up and the operator on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true' });
    });
    after(() => stack?.close());

    test('anyone signs up on the FREE plan with SHARED isolation, and nothing else', async () => {
      for (const chosen of [{ plan: 'ENTERPRISE' }, { plan: 'TEAM' }, { isolation: 'DEDICATED' }, { plan: 'ENTERPRISE', isolation: 'DEDICATED' }]) {
        const { slug, input } = newTenant(chosen);
        const refused = await respond(stack, undefined, CREATE_TENANT, { input });
        assert.deepEqual(errorCodes(refused), { createTenant: 'FORBIDDEN' }, JSON.stringify(chosen));
        // Nothing was created: the slug is still free for a plain sign-up.
        const plain = await respond(stack, undefined, CREATE_TENANT, { input: { ...input, plan: 'FREE', isolation: 'SHARED' } });
        assert.equal(plain.errors, undefined, JSON.stringify(plain.errors));
        const owner = { headers: bearer(await devLogin(stack.tokenUrl, slug, input.owner.email)) };
        const { tenant } = await as<TenantView>(stack, owner, TENANT);
        assert.deepEqual([tenant.plan, tenant.isolation, tenant.auditEvents], ['FREE', 'SHARED', []]);
      }
    });

    test('the operator creates tenants on any plan and isolation, audited in the tenant', async () => {
      const { slug, input } = newTenant({ plan: 'ENTERPRISE', isolation: 'DEDICATED' });
      await as(stack, { headers: operatorHeaders(stack) }, CREATE_TENANT, { input });
      const owner = { headers: bearer(await devLogin(stack.tokenUrl, slug, input.owner.email)) };
      const { tenant } = await as<TenantView>(stack, owner, TENANT);
      assert.deepEqual([tenant.plan, tenant.isolation], ['ENTERPRISE', 'DEDICATED']);
      assert.deepEqual(
        tenant.auditEvents.map((e) => ({ ...e, detail: JSON.parse(e.detail) })),
        [{ action: 'tenant.created', actor: 'operator', detail: { plan: 'ENTERPRISE', isolation: 'DEDICATED' } }],
      );
    });

    test("the operator changes a tenant's plan; its members' next tokens carry it; nobody else can", async () => {
      const owner = await signUp(stack, 'upgrade', { plan: 'FREE' });
      const change = { input: { tenantId: owner.tenantId, plan: 'TEAM' } };
      assert.deepEqual(errorCodes(await respond(stack, owner, CHANGE_PLAN, change)), { changeTenantPlan: 'UNAUTHORIZED_FIELD_OR_TYPE' });
      assert.deepEqual(errorCodes(await respond(stack, undefined, CHANGE_PLAN, change)), { changeTenantPlan: 'UNAUTHORIZED_FIELD_OR_TYPE' });
      assert.equal((await as<TenantView>(stack, owner, TENANT)).tenant.plan, 'FREE');

      const changed = await as<{ changeTenantPlan: { id: string; plan: string } }>(stack, { headers: operatorHeaders(stack) }, CHANGE_PLAN, change);
      assert.deepEqual(changed.changeTenantPlan, { id: owner.tenantId, plan: 'TEAM' });
      const renewed = { headers: bearer(await devLogin(stack.tokenUrl, owner.slug, owner.email)) };
      const { tenant } = await as<TenantView & { tenant: { quota: { plan: string } } }>(stack, renewed, `{ tenant { plan quota { plan } auditEvents { action actor detail } } }`);
      assert.deepEqual([tenant.plan, tenant.quota.plan], ['TEAM', 'TEAM']);
      assert.deepEqual(
        tenant.auditEvents.map((e) => ({ ...e, detail: JSON.parse(e.detail) })),
        [{ action: 'tenant.plan_changed', actor: 'operator', detail: { from: 'FREE', to: 'TEAM' } }],
      );
    });

    test("behind the gateway, tenancy refuses operator acts to anyone without the operator's scope", async () => {
      const owner = await signUp(stack, 'direct');
      const signer = principalSigner(stack.config.INTERNAL_AUTH_SECRET!);
      const principal = { tenantId: owner.tenantId, userId: owner.userId, roles: ['owner'], scopes: ['usage:write'], permissions: ['tenant:admin'], isolation: 'SHARED' as const, plan: 'ENTERPRISE' as const };
      for (const [query, variables] of [
        [CHANGE_PLAN, { input: { tenantId: owner.tenantId, plan: 'FREE' } }],
        [CREATE_TENANT, newTenant({ plan: 'ENTERPRISE' })],
      ] as const) {
        const response = await fetch(stack.subgraphUrls.tenancy!, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [PRINCIPAL_HEADER]: await signer.sign(principal) },
          body: JSON.stringify({ query, variables }),
        });
        const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
        assert.equal(body.errors?.[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(body));
      }
    });

    test('a wrong operator credential is refused, not taken for anonymous', async () => {
      const response = await respond(stack, { headers: bearer(`${stack.config.OPERATOR_TOKEN}x`) }, CREATE_TENANT, newTenant({ plan: 'TEAM' }));
      assert.equal(response.status, 401);
    });
  });
}

describe('anonymous callers have a request rate per address', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!, { AUTH_DEV_LOGIN: 'true', ANONYMOUS_REQUESTS_PER_SECOND: '0.1', ANONYMOUS_BURST: '5' });
  });
  after(() => stack?.close());

  test('over HTTP and WebSocket, past the burst: 429 with Retry-After; signed-in callers and the operator are not counted', async () => {
    const owner = await signUp(stack, 'rated');
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await respond(stack, undefined, `{ permissions { name } }`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    const refused = await fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `{ permissions { name } }` }) });
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal(((await refused.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code, 'RATE_LIMITED');

    const client = createClient({ url: stack.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      // Refused before it runs: graphql-ws answers with an error message, which its client hands to `error`.
      const errors = await new Promise<unknown>((resolve, reject) => {
        client.subscribe({ query: `{ permissions { name } }` }, { next: () => reject(new Error('it ran')), error: resolve, complete: () => reject(new Error('it ran')) });
      });
      assert.equal((errors as { extensions?: { code?: string } }[])[0]?.extensions?.code, 'RATE_LIMITED', JSON.stringify(errors));
    } finally {
      await client.dispose();
    }

    const token = await fetch(stack.gatewayUrl.replace(/\/graphql$/, '/oauth/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_secret=guess',
    });
    assert.equal(token.status, 429, 'the token endpoint at the gateway is anonymous traffic too');
    assert.ok(Number(token.headers.get('retry-after')) >= 1);
    assert.equal(((await token.json()) as { error: string }).error, 'temporarily_unavailable');

    assert.equal((await respond(stack, owner, `{ tenant { slug } }`)).status, 200);
    const created = await respond(stack, { headers: operatorHeaders(stack) }, CREATE_TENANT, newTenant({ plan: 'TEAM' }));
    assert.equal(created.status, 200, JSON.stringify(created.errors));
  });
});

describe('behind a trusted proxy, each client has its own address', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!, { ANONYMOUS_REQUESTS_PER_SECOND: '0.1', ANONYMOUS_BURST: '2', TRUSTED_PROXIES: '127.0.0.1' });
  });
  after(() => stack?.close());

  const from = (address: string) =>
    fetch(stack.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
      body: JSON.stringify({ query: '{ __typename }' }),
    }).then((response) => response.status);

  test('the address X-Forwarded-For names past the proxy is the one limited', async () => {
    assert.deepEqual([await from('203.0.113.1'), await from('203.0.113.1'), await from('203.0.113.1')], [200, 200, 429]);
    assert.equal(await from('203.0.113.2'), 200, 'another client behind the same proxy has its own allowance');
  });
});

describe('without a trusted proxy, X-Forwarded-For is not believed', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!, { ANONYMOUS_REQUESTS_PER_SECOND: '0.1', ANONYMOUS_BURST: '2' });
  });
  after(() => stack?.close());

  test('a client cannot buy itself a new allowance by naming another address', async () => {
    const statuses = [];
    for (const address of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
      const response = await fetch(stack.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      statuses.push(response.status);
    }
    assert.deepEqual(statuses, [200, 200, 429]);
  });
});
