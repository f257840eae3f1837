/**
 * Roles, groups and the authorization directives on Jarvis's own schema: @policy resolves against the
 * permissions the caller's built-in and custom roles add up to (directly or through groups), @requiresScopes
 * against an API key's scopes; unauthorized fields come back null with UNAUTHORIZED_FIELD_OR_TYPE, and the
 * services check again behind the gateway.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requestToken } from '@jarvis/platform/client';
import { DEV_LOGIN_GRANT, PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { databaseVariants } from '@jarvis/platform/testing';
import { addMember, as, errorCodes, respond, serviceKey, signIn, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const UNAUTHORIZED = 'UNAUTHORIZED_FIELD_OR_TYPE';

for (const variant of databaseVariants()) {
  describe(`roles, groups and authorization directives on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', TOKEN_EXCHANGE_CACHE_SECONDS: '0' });
      owner = await signUp(stack, 'rbac');
      await as(stack, owner, `mutation { createKnowledgeBase(input: { name: "Handbook" }) { id } }`);
    });
    after(() => stack?.close());

    test('a viewer gets what its role allows; the rest is null with UNAUTHORIZED_FIELD_OR_TYPE at its path', async () => {
      const viewer = await addMember(stack, owner, `viewer@${owner.slug}.test`, 'viewer');
      const response = await respond(stack, viewer, `{
        tenant { name knowledgeBases { name } users { email } usage { totals { quantity } } serviceAccounts { id } }
      }`);
      assert.deepEqual(response.data, {
        tenant: {
          name: 'Tenant rbac',
          knowledgeBases: [{ name: 'Handbook' }],
          users: [{ email: owner.email }, { email: viewer.email }],
          usage: null,
          serviceAccounts: null,
        },
      });
      // Paths as Apollo Router writes them: a list field's path ends in "@".
      assert.deepEqual(errorCodes(response), { 'tenant.usage': UNAUTHORIZED, 'tenant.serviceAccounts.@': UNAUTHORIZED });
    });

    test('a request with nothing authorized is rejected and writes nothing', async () => {
      const viewer = await addMember(stack, owner, `reader@${owner.slug}.test`, 'viewer');
      const refused = await respond(stack, viewer, `mutation { createKnowledgeBase(input: { name: "Not allowed" }) { id } }`);
      assert.equal(refused.data ?? null, null);
      assert.deepEqual(errorCodes(refused), { createKnowledgeBase: UNAUTHORIZED });
      const { tenant } = await as<{ tenant: { knowledgeBases: { name: string }[] } }>(stack, owner, `{ tenant { knowledgeBases { name } } }`);
      assert.deepEqual(tenant.knowledgeBases.map((kb) => kb.name), ['Handbook']);

      const anonymous = await respond(stack, undefined, `{ tenant { name } }`);
      assert.equal(anonymous.data ?? null, null);
      assert.deepEqual(errorCodes(anonymous), { tenant: UNAUTHORIZED });
      const partly = await respond<{ permissions: unknown[]; tenant: null }>(stack, undefined, `{ permissions { name } tenant { name } }`);
      assert.ok(partly.data?.permissions.length);
      assert.equal(partly.data?.tenant, null);
      assert.deepEqual(errorCodes(partly), { tenant: UNAUTHORIZED });
    });

    test('a custom role grants its permissions to the members of a group that holds it, from their next token', async () => {
      const email = `analyst@${owner.slug}.test`;
      const analyst = await addMember(stack, owner, email, 'viewer');
      const usageQuery = `{ tenant { usage { totals { metric } } } }`;
      assert.deepEqual(errorCodes(await respond(stack, analyst, usageQuery)), { 'tenant.usage': UNAUTHORIZED });

      await as(stack, owner, `mutation { createRole(input: { name: "analyst", description: "reads usage", permissions: ["usage:read"] }) { name } }`);
      const { createGroup } = await as<{ createGroup: { id: string } }>(stack, owner, `mutation { createGroup(input: { name: "analysts" }) { id } }`);
      await as(stack, owner, `mutation($g: ID!, $u: ID!) {
          assignRole(input: { role: "analyst", groupId: $g }) { role group { name } }
          addGroupMember(groupId: $g, userId: $u) { members { email } }
        }`, { g: createGroup.id, u: analyst.userId });

      const again = await signIn(stack, owner, email, analyst.userId);
      const allowed = await respond(stack, again, usageQuery);
      assert.equal(allowed.errors, undefined, JSON.stringify(allowed.errors));
      const { me } = await as<{ me: { roles: string[]; groups: { name: string }[]; permissions: string[] } }>(
        stack,
        again,
        `{ me { roles groups { name } permissions } }`,
      );
      assert.deepEqual(me.roles, ['viewer']);
      assert.deepEqual(me.groups, [{ name: 'analysts' }]);
      assert.ok(me.permissions.includes('usage:read') && !me.permissions.includes('kb:write'));

      const { tenant } = await as<{ tenant: { roles: { name: string; builtIn: boolean; permissions: string[] }[] } }>(
        stack,
        owner,
        `{ tenant { roles { name builtIn permissions } } }`,
      );
      assert.deepEqual(tenant.roles.map((r) => [r.name, r.builtIn]), [['owner', true], ['admin', true], ['member', true], ['viewer', true], ['analyst', false]]);
    });

    test('nobody hands out more than they hold, and a tenant keeps an owner', async () => {
      const admin = await addMember(stack, owner, `admin@${owner.slug}.test`, 'admin');
      const escalate = await respond(stack, admin, `mutation($u: ID!) { assignRole(input: { role: "owner", userId: $u }) { role } }`, { u: admin.userId });
      assert.equal(escalate.errors?.[0]?.extensions?.code, 'FORBIDDEN');
      const invite = await respond(stack, admin, `mutation { inviteUser(input: { email: "boss@x.test", role: "owner" }) { token } }`);
      assert.equal(invite.errors?.[0]?.extensions?.code, 'FORBIDDEN');
      const customRole = await respond(stack, admin, `mutation { createRole(input: { name: "x", permissions: ["kb:read"] }) { name } }`);
      assert.deepEqual(errorCodes(customRole), { createRole: UNAUTHORIZED });

      const lastOwner = await respond(stack, owner, `mutation($u: ID!) { revokeRole(input: { role: "owner", userId: $u }) }`, { u: owner.userId });
      assert.equal(lastOwner.errors?.[0]?.extensions?.code, 'CONFLICT');
      const { me } = await as<{ me: { roles: string[] } }>(stack, owner, `{ me { roles } }`);
      assert.deepEqual(me.roles, ['owner']);
    });

    test('members and groups can be removed, within what the remover holds', async () => {
      const admin = await addMember(stack, owner, `remover@${owner.slug}.test`, 'admin');
      const leaving = await addMember(stack, owner, `leaving@${owner.slug}.test`, 'member');
      assert.deepEqual(await as(stack, admin, `mutation($u: ID!) { removeMember(userId: $u) }`, { u: leaving.userId }), { removeMember: true });
      const signIn = await requestToken(stack.tokenUrl, { grant_type: DEV_LOGIN_GRANT, tenant: owner.slug, email: leaving.email });
      assert.deepEqual([signIn.status, signIn.body.error], [400, 'invalid_grant'], 'a removed member cannot sign in');

      const overreach = await respond(stack, admin, `mutation($u: ID!) { removeMember(userId: $u) }`, { u: owner.userId });
      assert.equal(overreach.errors?.[0]?.extensions?.code, 'FORBIDDEN', 'an admin cannot remove the owner');
      const alone = await respond(stack, owner, `mutation($u: ID!) { removeMember(userId: $u) }`, { u: owner.userId });
      assert.equal(alone.errors?.[0]?.extensions?.code, 'CONFLICT', 'the last owner stays');

      const { createGroup } = await as<{ createGroup: { id: string } }>(stack, owner, `mutation { createGroup(input: { name: "temporary" }) { id } }`);
      assert.deepEqual(await as(stack, admin, `mutation($g: ID!) { deleteGroup(id: $g) }`, { g: createGroup.id }), { deleteGroup: true });
      const again = await respond(stack, admin, `mutation($g: ID!) { deleteGroup(id: $g) }`, { g: createGroup.id });
      assert.equal(again.errors?.[0]?.extensions?.code, 'NOT_FOUND');
    });

    test('@requiresScopes: recording usage needs an API key with the usage:write scope', async () => {
      const record = `mutation { recordUsage(input: { meter: "crm.sync_calls", quantity: 1, idempotencyKey: "scoped" }) { quantity } }`;
      const unscoped = await serviceKey(stack, owner, { roles: ['admin'] });
      assert.deepEqual(errorCodes(await respond(stack, unscoped, record)), { recordUsage: UNAUTHORIZED });
      assert.deepEqual(errorCodes(await respond(stack, owner, record)), { recordUsage: UNAUTHORIZED }, 'people record no usage');
      const scoped = await serviceKey(stack, owner, { scopes: ['usage:write'] });
      assert.deepEqual(await as(stack, scoped, record), { recordUsage: { quantity: 1 } });
    });

    test('services check permissions again behind the gateway', async () => {
      const signer = principalSigner(stack.config.INTERNAL_AUTH_SECRET!);
      const principal = { tenantId: owner.tenantId, userId: owner.userId, roles: ['viewer'], scopes: [], permissions: ['kb:read'], isolation: 'SHARED' as const };
      const response = await fetch(stack.subgraphUrls.knowledge!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [PRINCIPAL_HEADER]: await signer.sign(principal) },
        body: JSON.stringify({ query: `mutation { createKnowledgeBase(input: { name: "Around the gateway" }) { id } }` }),
      });
      const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
      assert.equal(body.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    });
  });
}
