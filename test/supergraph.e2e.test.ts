import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { graphql, postGraphQL } from '@jarvis/platform/client';
import { databaseVariants } from '@jarvis/platform/testing';
import { as, respond, serviceKey, signUp, startTestStack, type TestStack } from './helpers.ts';

const CREATE_TENANT = `mutation($input: CreateTenantInput!) {
  createTenant(input: $input) { tenant { id slug plan } owner { id email } }
}`;

const TENANT_OVERVIEW = `{
  tenant {
    name
    users { email roles tenant { slug } }
    knowledgeBases { name description tenant { name } }
    conversations { title createdBy { name email } tenant { slug } }
    usage { from to totals { metric quantity } meters { meter quantity } }
  }
}`;

const RECORD_USAGE = `mutation($u: RecordUsageInput!) { recordUsage(input: $u) { id quantity } }`;
const USAGE = `{ tenant { usage { totals { metric quantity } meters { meter quantity } } } }`;

for (const variant of databaseVariants()) {
  describe(`the supergraph end to end on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;

    async function errorOf(query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) {
      const { body } = await postGraphQL(stack.gatewayUrl, query, variables, headers);
      assert.ok(body.errors?.length, `expected an error, got ${JSON.stringify(body)}`);
      return body.errors[0]!;
    }

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', TOKEN_EXCHANGE_CACHE_SECONDS: '0' });
    });
    after(() => stack?.close());

    test("one query crosses all four subgraphs and returns what the caller's mutations created", async () => {
      const owner = await signUp(stack, 'acme', { name: 'Acme' });
      const meter = await serviceKey(stack, owner, { scopes: ['usage:write'] });
      await as(stack, owner, `mutation {
          createKnowledgeBase(input: { name: "Handbook", description: "How we work" }) { id }
          createConversation(input: { title: "First chat" }) { id }
        }`);
      await as(stack, meter, RECORD_USAGE, { u: { meter: 'crm.sync_calls', quantity: 1234, idempotencyKey: 'e2e-1' } });

      const { tenant } = await as<{ tenant: Record<string, unknown> }>(stack, owner, TENANT_OVERVIEW);
      const { slug } = owner;
      assert.equal(tenant.name, 'Acme');
      assert.deepEqual(tenant.users, [{ email: owner.email, roles: ['owner'], tenant: { slug } }]);
      assert.deepEqual(tenant.knowledgeBases, [{ name: 'Handbook', description: 'How we work', tenant: { name: 'Acme' } }]);
      assert.deepEqual(tenant.conversations, [
        { title: 'First chat', createdBy: { name: `Owner of ${slug}`, email: owner.email }, tenant: { slug } },
      ]);
      const usage = tenant.usage as { from: string; to: string; meters: { meter: string; quantity: number }[] };
      assert.deepEqual(usage.meters, [{ meter: 'crm.sync_calls', quantity: 1234 }]);
      assert.ok(new Date(usage.from) <= new Date() && new Date() < new Date(usage.to));
    });

    test('recorded usage counts once per idempotency key', async () => {
      const owner = await signUp(stack, 'usage');
      const meter = await serviceKey(stack, owner, { scopes: ['usage:write'] });
      const input = { meter: 'crm.sync_calls', quantity: 5, idempotencyKey: 'same-event' };
      const results = await Promise.all([1, 2, 3].map(() => as<{ recordUsage: { id: string } }>(stack, meter, RECORD_USAGE, { u: input })));
      assert.equal(new Set(results.map((r) => r.recordUsage.id)).size, 1);

      const changed = await errorOf(RECORD_USAGE, { u: { ...input, quantity: 6 } }, meter.headers);
      assert.equal(changed.extensions?.code, 'CONFLICT');

      const data = await as<{ tenant: { usage: { meters: { meter: string; quantity: number }[] } } }>(stack, owner, USAGE);
      assert.deepEqual(data.tenant.usage.meters, [{ meter: 'crm.sync_calls', quantity: 5 }]);
    });

    test('bad input gets BAD_USER_INPUT or CONFLICT naming the field, and nothing is written', async () => {
      const first = await signUp(stack, 'dup');
      const duplicate = await errorOf(CREATE_TENANT, {
        input: { name: 'Again', slug: first.slug, owner: { email: 'someone@x.test', name: 'Someone' } },
      });
      assert.deepEqual([duplicate.extensions?.code, duplicate.extensions?.field], ['CONFLICT', 'slug']);
      const unchanged = await as<{ tenant: { id: string; name: string; users: { email: string }[] } }>(
        stack,
        first,
        `{ tenant { id name users { email } } }`,
      );
      assert.deepEqual(unchanged.tenant, { id: first.tenantId, name: `Tenant dup`, users: [{ email: first.email }] });

      const badSlug = await errorOf(CREATE_TENANT, {
        input: { name: 'Bad', slug: 'Not A Slug!', owner: { email: 'someone@x.test', name: 'Someone' } },
      });
      assert.deepEqual([badSlug.extensions?.code, badSlug.extensions?.field], ['BAD_USER_INPUT', 'slug']);

      const badEmail = await errorOf(CREATE_TENANT, {
        input: { name: 'Bad', slug: `ok-${randomUUID().slice(0, 8)}`, owner: { email: 'nope', name: 'Someone' } },
      });
      assert.deepEqual([badEmail.extensions?.code, badEmail.extensions?.field], ['BAD_USER_INPUT', 'owner.email']);

      const tooLong = await errorOf(`mutation { createKnowledgeBase(input: { name: "${'x'.repeat(201)}" }) { id } }`, {}, first.headers);
      assert.deepEqual([tooLong.extensions?.code, tooLong.extensions?.field], ['BAD_USER_INPUT', 'name']);
      const { tenant } = await as<{ tenant: { knowledgeBases: unknown[] } }>(stack, first, `{ tenant { knowledgeBases { id } } }`);
      assert.deepEqual(tenant.knowledgeBases, []);

      const badPeriod = await errorOf(
        `{ tenant { usage(period: { from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z" }) { from } } }`,
        {},
        first.headers,
      );
      assert.equal(badPeriod.extensions?.code, 'BAD_USER_INPUT');
    });

    test('an anonymous caller gets the public fields and nothing of any tenant', async () => {
      const anonymous = await respond(stack, undefined, `{ me { id } permissions { name } }`);
      assert.equal(anonymous.errors, undefined);
      assert.equal((anonymous.data as { me: unknown }).me, null);
      assert.ok((anonymous.data as { permissions: unknown[] }).permissions.length > 0);
      const data = await graphql<{ me: unknown }>(stack.gatewayUrl, `{ me { id } }`);
      assert.equal(data.me, null);
    });
  });
}
