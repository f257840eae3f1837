/**
 * The isolation matrix: three tenants — two SHARED, one DEDICATED — hold data in every subgraph, and each
 * attacks the others through every door: queries, mutations naming their ids, `_entities` sent straight to
 * each subgraph with a valid principal, guessed ids, and API keys. Nothing crosses.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { dedicatedSchemaName, PRINCIPAL_HEADER, principalSigner, schemaName, type Principal } from '@jarvis/platform';
import { databaseVariants } from '@jarvis/platform/testing';
import { addMember, as, respond, serviceKey, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const EVERYTHING = `{
  tenant {
    id name slug isolation
    users { id email roles groups { id name } permissions }
    groups { id name members { id } roles }
    roles { name permissions }
    serviceAccounts { id name roles apiKeys { id name scopes revokedAt } }
    invitations { id email role }
    knowledgeBases { id name }
    conversations { id title createdBy { id email } }
    usage { totals { metric quantity } meters { meter quantity } }
    quota { tokensToday memberAllowances { user { id } } }
  }
}`;

interface Holdings {
  member: Member;
  memberId: string;
  groupId: string;
  serviceAccountId: string;
  keyId: string;
  keySecret: string;
  knowledgeBaseId: string;
  conversationId: string;
}

for (const variant of databaseVariants()) {
  describe(`tenant isolation matrix on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    const tenants: Record<'A' | 'B' | 'D', Holdings> = {} as never;

    async function populate(label: string, isolation: 'SHARED' | 'DEDICATED'): Promise<Holdings> {
      const owner = await signUp(stack, label, { isolation, name: `Tenant ${label}` });
      const colleague = await addMember(stack, owner, `colleague@${owner.slug}.test`, 'member');
      await as(stack, owner, `mutation($input: InviteUserInput!) { inviteUser(input: $input) { token } }`, {
        input: { email: `invitee@${owner.slug}.test`, role: 'viewer' },
      });
      await as(stack, owner, `mutation { createRole(input: { name: "auditor", permissions: ["usage:read", "kb:read"] }) { name } }`);
      const { createGroup } = await as<{ createGroup: { id: string } }>(stack, owner, `mutation { createGroup(input: { name: "staff" }) { id } }`);
      await as(stack, owner, `mutation($g: ID!, $u: ID!) {
          addGroupMember(groupId: $g, userId: $u) { id }
          assignRole(input: { role: "auditor", groupId: $g }) { role }
        }`, { g: createGroup.id, u: colleague.userId });
      const key = await serviceKey(stack, owner, { roles: ['member'], scopes: ['usage:write'] });
      const { createKnowledgeBase } = await as<{ createKnowledgeBase: { id: string } }>(
        stack,
        colleague,
        `mutation { createKnowledgeBase(input: { name: "Secrets of ${label}" }) { id } }`,
      );
      // Conversations are their starter's: the owner's is in the owner's view.
      const { createConversation } = await as<{ createConversation: { id: string } }>(
        stack,
        owner,
        `mutation { createConversation(input: { title: "Talk of ${label}" }) { id } }`,
      );
      await as(stack, key, `mutation { recordUsage(input: { meter: "crm.sync_calls", quantity: 7, idempotencyKey: "${label}" }) { id } }`);
      return {
        member: owner,
        memberId: colleague.userId,
        groupId: createGroup.id,
        serviceAccountId: key.serviceAccountId,
        keyId: key.keyId,
        keySecret: key.secret,
        knowledgeBaseId: createKnowledgeBase.id,
        conversationId: createConversation.id,
      };
    }

    const snapshot = async (holdings: Holdings) => (await as<{ tenant: unknown }>(stack, holdings.member, EVERYTHING)).tenant;

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', TOKEN_EXCHANGE_CACHE_SECONDS: '0' });
      tenants.A = await populate('iso-a', 'SHARED');
      tenants.B = await populate('iso-b', 'SHARED');
      tenants.D = await populate('iso-d', 'DEDICATED');
    });
    after(() => stack?.close());

    const pairs = () =>
      (['A', 'B', 'D'] as const).flatMap((x) => (['A', 'B', 'D'] as const).filter((y) => y !== x).map((y) => [x, y] as const));

    /** Every id and name of `victim` that must never appear in what `attacker` sees. */
    function secretsOf(victim: Holdings): string[] {
      const v = victim;
      return [v.member.tenantId, v.member.userId, v.memberId, v.groupId, v.serviceAccountId, v.keyId, v.knowledgeBaseId, v.conversationId, v.member.slug];
    }

    test("each tenant's own view holds its data and nothing of the others", async () => {
      for (const [x, y] of pairs()) {
        const seen = JSON.stringify(await snapshot(tenants[x]));
        assert.ok(seen.includes(tenants[x].knowledgeBaseId) && seen.includes(tenants[x].conversationId), `${x} sees its own data`);
        for (const secret of secretsOf(tenants[y])) assert.ok(!seen.includes(secret), `${x} saw ${y}'s ${secret}`);
      }
    });

    test("mutations naming another tenant's ids find nothing and change nothing", async () => {
      const before = { A: await snapshot(tenants.A), B: await snapshot(tenants.B), D: await snapshot(tenants.D) };
      for (const [x, y] of pairs()) {
        const attacker = tenants[x].member;
        const victim = tenants[y];
        const attempts: [string, Record<string, unknown>][] = [
          [`mutation($g: ID!, $u: ID!) { addGroupMember(groupId: $g, userId: $u) { id } }`, { g: victim.groupId, u: tenants[x].memberId }],
          [`mutation($g: ID!, $u: ID!) { addGroupMember(groupId: $g, userId: $u) { id } }`, { g: tenants[x].groupId, u: victim.memberId }],
          [`mutation($g: ID!, $u: ID!) { removeGroupMember(groupId: $g, userId: $u) { id } }`, { g: victim.groupId, u: victim.memberId }],
          [`mutation($u: ID!) { assignRole(input: { role: "viewer", userId: $u }) { role } }`, { u: victim.memberId }],
          [`mutation($u: ID!) { revokeRole(input: { role: "owner", userId: $u }) }`, { u: victim.member.userId }],
          [`mutation($s: ID!) { assignRole(input: { role: "viewer", serviceAccountId: $s }) { role } }`, { s: victim.serviceAccountId }],
          [`mutation($k: ID!) { revokeApiKey(id: $k) { id } }`, { k: victim.keyId }],
          [`mutation($u: ID!) { removeMember(userId: $u) }`, { u: victim.memberId }],
          [`mutation($g: ID!) { deleteGroup(id: $g) }`, { g: victim.groupId }],
          [`mutation($s: ID!) { createApiKey(input: { serviceAccountId: $s, name: "stolen" }) { secret } }`, { s: victim.serviceAccountId }],
        ];
        for (const [query, variables] of attempts) {
          const response = await respond(stack, attacker, query, variables);
          assert.ok(response.errors?.length, `${x} → ${y}: ${query} succeeded: ${JSON.stringify(response)}`);
          const code = response.errors[0]!.extensions?.code;
          assert.ok(code === 'NOT_FOUND' || code === 'BAD_USER_INPUT', `${x} → ${y}: ${query} gave ${code}`);
        }
      }
      const afterwards = { A: await snapshot(tenants.A), B: await snapshot(tenants.B), D: await snapshot(tenants.D) };
      assert.deepEqual(afterwards, before);
    });

    test("_entities sent straight to every subgraph with a valid principal of one tenant returns nothing of another", async () => {
      const signer = principalSigner(stack.config.INTERNAL_AUTH_SECRET!);
      for (const [x, y] of pairs()) {
        const principal: Principal = {
          tenantId: tenants[x].member.tenantId,
          userId: tenants[x].member.userId,
          roles: ['owner'],
          scopes: ['usage:write'],
          permissions: ['kb:read', 'kb:write', 'kb:manage', 'chat:use', 'usage:read', 'members:read', 'members:manage', 'apikeys:manage', 'tenant:admin'],
          isolation: x === 'D' ? 'DEDICATED' : 'SHARED',
        };
        const headers = { 'content-type': 'application/json', [PRINCIPAL_HEADER]: await signer.sign(principal) };
        const victim = tenants[y];
        const requests: [string, string, unknown[]][] = [
          ['tenancy', `... on Tenant { id name users { email } } ... on User { id email }`, [
            { __typename: 'Tenant', id: victim.member.tenantId },
            { __typename: 'User', id: victim.memberId, tenant: { id: victim.member.tenantId } },
            // a guessed pairing: the victim's user under the attacker's own tenant
            { __typename: 'User', id: victim.memberId, tenant: { id: tenants[x].member.tenantId } },
          ]],
          ['knowledge', `... on Tenant { knowledgeBases { id name } }`, [{ __typename: 'Tenant', id: victim.member.tenantId }]],
          ['chat', `... on Tenant { conversations { id title } }`, [{ __typename: 'Tenant', id: victim.member.tenantId }]],
          ['usage', `... on Tenant { usage { totals { quantity } } }`, [{ __typename: 'Tenant', id: victim.member.tenantId }]],
        ];
        for (const [subgraph, selection, representations] of requests) {
          const response = await fetch(stack.subgraphUrls[subgraph]!, {
            method: 'POST',
            headers,
            body: JSON.stringify({ query: `query($r: [_Any!]!) { _entities(representations: $r) { ${selection} } }`, variables: { r: representations } }),
          });
          const text = await response.text();
          const label = `iso-${y.toLowerCase()}`;
          for (const secret of [...secretsOf(victim), `Secrets of ${label}`, `Talk of ${label}`]) {
            assert.ok(!text.includes(secret), `${x} → ${y} via ${subgraph} revealed ${secret}: ${text}`);
          }
          const body = JSON.parse(text) as { data?: { _entities: unknown[] }; errors?: { extensions?: { code?: string } }[] };
          const empty = (entity: unknown) => entity === null || Object.values(entity as object).every((value) => value === null);
          assert.ok(body.data?._entities.every(empty), `${x} → ${y} via ${subgraph}: ${text}`);
          assert.ok(body.errors?.some((e) => e.extensions?.code === 'FORBIDDEN'), `${x} → ${y} via ${subgraph}: ${text}`);
        }
      }
    });

    test('guessed ids find nothing', async () => {
      const owner = tenants.A.member;
      for (const query of [
        `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`,
        `mutation($id: ID!) { addGroupMember(groupId: $id, userId: $id) { id } }`,
        `mutation($id: ID!) { createApiKey(input: { serviceAccountId: $id, name: "x" }) { secret } }`,
      ]) {
        const response = await respond(stack, owner, query, { id: randomUUID() });
        assert.equal(response.errors?.[0]?.extensions?.code, 'NOT_FOUND', query);
      }
    });

    test("an API key reads only its own tenant, and one re-labelled with another tenant's id is refused", async () => {
      for (const [x, y] of pairs()) {
        const key = { headers: { authorization: `Bearer ${tenants[x].keySecret}` } };
        const seen = JSON.stringify(await as(stack, key, `{ tenant { id knowledgeBases { id } conversations { id } } }`));
        assert.ok(seen.includes(tenants[x].knowledgeBaseId));
        for (const secret of secretsOf(tenants[y])) assert.ok(!seen.includes(secret), `${x}'s key saw ${y}'s ${secret}`);

        const relabelled = tenants[x].keySecret.replace(tenants[x].member.tenantId, tenants[y].member.tenantId);
        const refused = await respond(stack, { headers: { authorization: `Bearer ${relabelled}` } }, `{ tenant { id } }`);
        assert.deepEqual([refused.status, refused.errors?.[0]?.extensions?.code], [401, 'UNAUTHENTICATED']);
      }
    });

    // Looked at in PostgreSQL, which the test can reach; the PGlite placement is in platform/test/database.test.ts.
    if (variant.url) test("a DEDICATED tenant's data lives in schemas of its own", async () => {
      const client = new pg.Client({ connectionString: variant.url });
      await client.connect();
      try {
        for (const subgraph of ['knowledge', 'chat', 'usage']) {
          const shared = schemaName(subgraph, stack.config.DATABASE_SCHEMA_PREFIX);
          const own = dedicatedSchemaName(shared, tenants.D.member.tenantId);
          const count = async (schema: string, table: string) =>
            Number((await client.query(`SELECT count(*) FROM ${schema}.${table} WHERE tenant_id = $1`, [tenants.D.member.tenantId])).rows[0].count);
          const table = { knowledge: 'knowledge_bases', chat: 'conversations', usage: 'client_usage' }[subgraph]!;
          assert.deepEqual([await count(own, table), await count(shared, table)], [1, 0], subgraph);
          const sharedTenantRows = Number((await client.query(`SELECT count(*) FROM ${shared}.${table} WHERE tenant_id = $1`, [tenants.A.member.tenantId])).rows[0].count);
          assert.equal(sharedTenantRows, 1, `a SHARED tenant's ${table} stay in ${shared}`);
        }
      } finally {
        await client.end();
      }
    });
  });
}
