/**
 * The escalations of the attacker's report, through the gateway: an admin joining a group that holds the owner
 * role, an admin taking an owner out of that group, and an admin minting API keys with scopes or for an account
 * beyond its own reach. Each is refused with FORBIDDEN and changes nothing; an owner keeps doing what it may.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { requestToken } from '@jarvis/platform/client';
import { databaseVariants } from '@jarvis/platform/testing';
import { addMember, as, respond, serviceKey, signIn, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const ADD_TO_GROUP = `mutation($g: ID!, $u: ID!) { addGroupMember(groupId: $g, userId: $u) { id } }`;
const REMOVE_FROM_GROUP = `mutation($g: ID!, $u: ID!) { removeGroupMember(groupId: $g, userId: $u) { id } }`;
const CREATE_ACCOUNT = `mutation($input: CreateServiceAccountInput!) { createServiceAccount(input: $input) { id } }`;
const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id scopes } } }`;
const GROUP_MEMBERS = `query { tenant { groups { name members { email } } } }`;

function refusal(response: { errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }) {
  const [error] = response.errors ?? [];
  return { code: error?.extensions?.code, message: error?.message ?? '' };
}

for (const variant of databaseVariants()) {
  describe(`the reported escalations are refused, through the gateway, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let admin: Member;
    let coOwner: Member;
    let ownersGroup: string;

    const membersOfOwnersGroup = async () => {
      const { tenant } = await as<{ tenant: { groups: { name: string; members: { email: string }[] }[] } }>(stack, owner, GROUP_MEMBERS);
      return tenant.groups.find((g) => g.name === 'owners')!.members.map((m) => m.email).sort();
    };

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', TOKEN_EXCHANGE_CACHE_SECONDS: '0' });
      owner = await signUp(stack, 'escalation');
      admin = await addMember(stack, owner, `admin@${owner.slug}.test`, 'admin');
      // An owner through a group, as in the report.
      coOwner = await addMember(stack, owner, `co-owner@${owner.slug}.test`, 'member');
      const { createGroup } = await as<{ createGroup: { id: string } }>(stack, owner, `mutation { createGroup(input: { name: "owners" }) { id } }`);
      ownersGroup = createGroup.id;
      await as(stack, owner, `mutation($g: ID!) { assignRole(input: { role: "owner", groupId: $g }) { role } }`, { g: ownersGroup });
      await as(stack, owner, ADD_TO_GROUP, { g: ownersGroup, u: coOwner.userId });
    });
    after(() => stack?.close());

    test('an admin cannot join a group holding the owner role, and its next token carries no tenant:admin', async () => {
      const joined = await respond(stack, admin, ADD_TO_GROUP, { g: ownersGroup, u: admin.userId });
      assert.equal(refusal(joined).code, 'FORBIDDEN', JSON.stringify(joined));
      assert.match(refusal(joined).message, /tenant:admin/);
      assert.deepEqual(await membersOfOwnersGroup(), [coOwner.email]);

      const again = await signIn(stack, owner, admin.email, admin.userId);
      const claims = decodeJwt(again.headers.authorization!.replace(/^Bearer /, ''));
      assert.deepEqual(claims.groups, []);
      assert.ok(!(claims.permissions as string[]).includes('tenant:admin'), `the next token holds ${claims.permissions}`);
    });

    test('an admin cannot take an owner out of the group that makes it one', async () => {
      const removed = await respond(stack, admin, REMOVE_FROM_GROUP, { g: ownersGroup, u: coOwner.userId });
      assert.equal(refusal(removed).code, 'FORBIDDEN', JSON.stringify(removed));
      assert.match(refusal(removed).message, /tenant:admin/);
      assert.deepEqual(await membersOfOwnersGroup(), [coOwner.email]);
    });

    test('an admin cannot put scopes it does not hold on a key: an unknown one, or usage:write', async () => {
      const { createServiceAccount } = await as<{ createServiceAccount: { id: string } }>(stack, admin, CREATE_ACCOUNT, { input: { name: 'ingest', roles: ['viewer'] } });
      const input = { serviceAccountId: createServiceAccount.id, name: 'reported' };

      const reported = await respond(stack, admin, CREATE_KEY, { input: { ...input, scopes: ['usage:write', 'admin:all'] } });
      assert.deepEqual(reported.errors?.map((e) => [e.extensions?.code, e.extensions?.field]), [['BAD_USER_INPUT', 'scopes']], JSON.stringify(reported));
      assert.match(refusal(reported).message, /admin:all/);

      const unheld = await respond(stack, admin, CREATE_KEY, { input: { ...input, scopes: ['usage:write'] } });
      assert.equal(refusal(unheld).code, 'FORBIDDEN', JSON.stringify(unheld));
      assert.match(refusal(unheld).message, /usage:write/);

      const reserved = await respond(stack, owner, CREATE_KEY, { input: { ...input, scopes: ['jarvis:operator'] } });
      assert.deepEqual([refusal(reserved).code, reserved.errors?.[0]?.extensions?.field], ['BAD_USER_INPUT', 'scopes'], 'not even an owner puts a reserved scope on a key');

      const { tenant } = await as<{ tenant: { serviceAccounts: { id: string; apiKeys: unknown[] }[] } }>(stack, owner, `{ tenant { serviceAccounts { id apiKeys { id } } } }`);
      assert.deepEqual(tenant.serviceAccounts.find((a) => a.id === createServiceAccount.id)?.apiKeys, [], 'no key was written');
    });

    test('an admin cannot mint a key for a service account holding the owner role', async () => {
      const { createServiceAccount } = await as<{ createServiceAccount: { id: string } }>(stack, owner, CREATE_ACCOUNT, { input: { name: 'automation', roles: ['owner'] } });
      const minted = await respond(stack, admin, CREATE_KEY, { input: { serviceAccountId: createServiceAccount.id, name: 'borrowed', scopes: [] } });
      assert.equal(refusal(minted).code, 'FORBIDDEN', JSON.stringify(minted));
      assert.match(refusal(minted).message, /tenant:admin/);
    });

    test('an owner still creates a usage:write key, and its token carries the scope', async () => {
      const key = await serviceKey(stack, owner, { roles: ['viewer'], scopes: ['usage:write'] });
      const traded = await requestToken(stack.tokenUrl, { grant_type: 'client_credentials', client_secret: key.secret });
      assert.equal(traded.status, 200, JSON.stringify(traded.body));
      assert.equal(decodeJwt(traded.body.access_token as string).scope, 'usage:write');
    });
  });
}
