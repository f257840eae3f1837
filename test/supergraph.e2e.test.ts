import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { graphql, postGraphQL, type Config } from '@jarvis/platform';
import { databaseVariants, dropSchemas, testConfig } from '@jarvis/platform/testing';
import { startStack, type Stack } from '../scripts/stack.ts';

const CREATE_TENANT = `mutation($input: CreateTenantInput!) {
  createTenant(input: $input) { tenant { id slug plan } owner { id email } }
}`;

const TENANT_OVERVIEW = `query($id: ID!) {
  tenant(id: $id) {
    name
    users { email tenant { slug } }
    knowledgeBases { name description tenant { name } }
    conversations { title createdBy { name email } tenant { slug } }
    usage { from to totals { metric quantity } }
  }
}`;

interface Created {
  tenantId: string;
  ownerId: string;
  ownerEmail: string;
}

for (const variant of databaseVariants()) {
  describe(`the supergraph end to end on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: Stack;
    let config: Config;
    const url = () => stack.gatewayUrl;

    async function createTenant(slug: string, name = `Tenant ${slug}`): Promise<Created> {
      const data = await graphql<{ createTenant: { tenant: { id: string }; owner: { id: string } } }>(url(), CREATE_TENANT, {
        input: { name, slug, owner: { email: `owner@${slug}.test`, name: `Owner of ${slug}` } },
      });
      return { tenantId: data.createTenant.tenant.id, ownerId: data.createTenant.owner.id, ownerEmail: `owner@${slug}.test` };
    }

    async function errorOf(query: string, variables: Record<string, unknown>) {
      const { body } = await postGraphQL(url(), query, variables);
      assert.ok(body.errors?.length, `expected an error, got ${JSON.stringify(body)}`);
      return body.errors[0]!;
    }

    before(async () => {
      config = testConfig(variant);
      stack = await startStack(config, { freePorts: true });
    });
    after(async () => {
      await stack?.close();
      if (variant.url && config.DATABASE_SCHEMA_PREFIX) await dropSchemas(variant.url, config.DATABASE_SCHEMA_PREFIX);
    });

    test('one query crosses all four subgraphs and returns what the mutations created', async () => {
      const slug = `acme-${randomUUID().slice(0, 8)}`;
      const { tenantId, ownerId } = await createTenant(slug, 'Acme');
      await graphql(url(), `mutation($kb: CreateKnowledgeBaseInput!, $c: CreateConversationInput!, $u: RecordUsageInput!) {
          createKnowledgeBase(input: $kb) { id }
          createConversation(input: $c) { id }
          recordUsage(input: $u) { id }
        }`, {
        kb: { tenantId, name: 'Handbook', description: 'How we work' },
        c: { tenantId, title: 'First chat', createdById: ownerId },
        u: { tenantId, metric: 'PROMPT_TOKENS', quantity: 1234, idempotencyKey: 'e2e-1' },
      });

      const data = await graphql<{ tenant: Record<string, unknown> }>(url(), TENANT_OVERVIEW, { id: tenantId });
      const tenant = data.tenant as {
        name: string;
        users: unknown[];
        knowledgeBases: unknown[];
        conversations: unknown[];
        usage: { from: string; to: string; totals: { metric: string; quantity: number }[] };
      };
      assert.equal(tenant.name, 'Acme');
      assert.deepEqual(tenant.users, [{ email: `owner@${slug}.test`, tenant: { slug } }]);
      assert.deepEqual(tenant.knowledgeBases, [{ name: 'Handbook', description: 'How we work', tenant: { name: 'Acme' } }]);
      assert.deepEqual(tenant.conversations, [
        { title: 'First chat', createdBy: { name: `Owner of ${slug}`, email: `owner@${slug}.test` }, tenant: { slug } },
      ]);
      assert.deepEqual(
        tenant.usage.totals.find((t) => t.metric === 'PROMPT_TOKENS'),
        { metric: 'PROMPT_TOKENS', quantity: 1234 },
      );
      assert.ok(new Date(tenant.usage.from) <= new Date() && new Date() < new Date(tenant.usage.to));
    });

    test("a tenant sees none of its neighbour's data, even through references", async () => {
      const a = await createTenant(`iso-a-${randomUUID().slice(0, 8)}`);
      const b = await createTenant(`iso-b-${randomUUID().slice(0, 8)}`);
      await graphql(url(), `mutation($kb: CreateKnowledgeBaseInput!, $c: CreateConversationInput!) {
          createKnowledgeBase(input: $kb) { id }
          createConversation(input: $c) { id }
        }`, {
        kb: { tenantId: a.tenantId, name: 'Secret plans' },
        // B's conversation names A's owner as its author: the reference must not resolve across tenants.
        c: { tenantId: b.tenantId, title: 'Borrowed author', createdById: a.ownerId },
      });

      const data = await graphql<{ tenant: { knowledgeBases: unknown[]; conversations: { createdBy: unknown }[]; users: { email: string }[] } }>(
        url(),
        `query($id: ID!) { tenant(id: $id) { knowledgeBases { name } conversations { createdBy { email } } users { email } } }`,
        { id: b.tenantId },
      );
      assert.deepEqual(data.tenant.knowledgeBases, []);
      assert.deepEqual(data.tenant.conversations, [{ createdBy: null }]);
      assert.deepEqual(data.tenant.users.map((u) => u.email), [b.ownerEmail]);
    });

    test('usage events count once per idempotency key', async () => {
      const { tenantId } = await createTenant(`usage-${randomUUID().slice(0, 8)}`);
      const record = `mutation($u: RecordUsageInput!) { recordUsage(input: $u) { id quantity } }`;
      const input = { tenantId, metric: 'REQUESTS', quantity: 5, idempotencyKey: 'same-event' };
      const results = await Promise.all([1, 2, 3].map(() => graphql<{ recordUsage: { id: string } }>(url(), record, { u: input })));
      assert.equal(new Set(results.map((r) => r.recordUsage.id)).size, 1);

      const changed = await errorOf(record, { u: { ...input, quantity: 6 } });
      assert.equal(changed.extensions?.code, 'CONFLICT');

      const data = await graphql<{ tenant: { usage: { totals: { metric: string; quantity: number }[] } } }>(
        url(),
        `query($id: ID!) { tenant(id: $id) { usage { totals { metric quantity } } } }`,
        { id: tenantId },
      );
      assert.equal(data.tenant.usage.totals.find((t) => t.metric === 'REQUESTS')?.quantity, 5);
    });

    test('bad input gets BAD_USER_INPUT or CONFLICT naming the field, and nothing is written', async () => {
      const slug = `dup-${randomUUID().slice(0, 8)}`;
      const first = await createTenant(slug);
      const duplicate = await errorOf(CREATE_TENANT, {
        input: { name: 'Again', slug, owner: { email: 'someone@x.test', name: 'Someone' } },
      });
      assert.deepEqual([duplicate.extensions?.code, duplicate.extensions?.field], ['CONFLICT', 'slug']);
      const unchanged = await graphql<{ tenantBySlug: { id: string; name: string } }>(
        url(),
        `query($slug: String!) { tenantBySlug(slug: $slug) { id name } }`,
        { slug },
      );
      assert.deepEqual(unchanged.tenantBySlug, { id: first.tenantId, name: `Tenant ${slug}` });

      const badSlug = await errorOf(CREATE_TENANT, {
        input: { name: 'Bad', slug: 'Not A Slug!', owner: { email: 'someone@x.test', name: 'Someone' } },
      });
      assert.deepEqual([badSlug.extensions?.code, badSlug.extensions?.field], ['BAD_USER_INPUT', 'slug']);

      const badEmail = await errorOf(CREATE_TENANT, {
        input: { name: 'Bad', slug: `ok-${randomUUID().slice(0, 8)}`, owner: { email: 'nope', name: 'Someone' } },
      });
      assert.deepEqual([badEmail.extensions?.code, badEmail.extensions?.field], ['BAD_USER_INPUT', 'owner.email']);

      const badTenant = await errorOf(`mutation { createKnowledgeBase(input: { tenantId: "42", name: "x" }) { id } }`, {});
      assert.deepEqual([badTenant.extensions?.code, badTenant.extensions?.field], ['BAD_USER_INPUT', 'tenantId']);

      const { tenantId } = await createTenant(`period-${randomUUID().slice(0, 8)}`);
      const badPeriod = await errorOf(
        `query($id: ID!) { tenant(id: $id) { usage(period: { from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z" }) { from } } }`,
        { id: tenantId },
      );
      assert.equal(badPeriod.extensions?.code, 'BAD_USER_INPUT');
    });

    test('a missing tenant is null, not an error', async () => {
      const data = await graphql<{ tenant: unknown }>(url(), `query($id: ID!) { tenant(id: $id) { id } }`, { id: randomUUID() });
      assert.equal(data.tenant, null);
    });
  });
}
