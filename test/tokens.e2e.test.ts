import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { bearer, graphql, postGraphQL, requestToken } from '@jarvis/platform/client';
import type { RunningService } from '@jarvis/platform/http';
import { createSubgraphServer } from '@jarvis/platform/subgraph';
import { databaseVariants, dropSchemas, testConfig } from '@jarvis/platform/testing';
import { tenancySubgraph } from '@jarvis/tenancy';
import { as, serviceKey, startTestStack, type Member, type TestStack } from './helpers.ts';

const DEV_LOGIN = 'urn:jarvis:params:oauth:grant-type:dev-login';

for (const variant of databaseVariants()) {
  describe(`tokens from the tenancy issuer, accepted by the gateway, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let tokenUrl: string;
    const slug = `tok-${randomUUID().slice(0, 8)}`;
    let tenantId: string;
    let ownerId: string;

    const ownerToken = async () => {
      const { body } = await requestToken(tokenUrl, { grant_type: DEV_LOGIN, tenant: slug, email: 'ada@token.test' });
      return body.access_token as string;
    };

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', TOKEN_EXCHANGE_CACHE_SECONDS: '0' });
      tokenUrl = stack.subgraphUrls.tenancy!.replace(/\/graphql$/, '/oauth/token');
      const created = await graphql<{ createTenant: { tenant: { id: string }; owner: { id: string } } }>(
        stack.gatewayUrl,
        `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } owner { id } } }`,
        { input: { name: 'Token Co', slug, owner: { email: 'Ada@Token.test', name: 'Ada' } } },
      );
      tenantId = created.createTenant.tenant.id;
      ownerId = created.createTenant.owner.id;
    });
    after(() => stack?.close());

    test('dev-login issues a short ES256 access token naming the member and tenant, and the gateway accepts it', async () => {
      const { status, body, cacheControl } = await requestToken(tokenUrl, { grant_type: DEV_LOGIN, tenant: slug, email: 'ada@token.test' });
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(cacheControl, 'no-store');
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.expires_in, stack.config.ACCESS_TOKEN_TTL_SECONDS);
      const token = body.access_token as string;
      assert.deepEqual(decodeProtectedHeader(token).alg, 'ES256');
      const claims = decodeJwt(token);
      assert.deepEqual(
        [claims.sub, claims.tid, claims.iss, claims.aud, claims.exp! - claims.iat!],
        [ownerId, tenantId, stack.config.TOKEN_ISSUER, stack.config.TOKEN_AUDIENCE, stack.config.ACCESS_TOKEN_TTL_SECONDS],
      );
      assert.deepEqual([claims.roles, claims.groups, claims.iso, claims.scope], [['owner'], [], 'SHARED', '']);
      assert.ok((claims.permissions as string[]).includes('tenant:admin'), 'the owner holds every permission');

      const response = await fetch(stack.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: `{ tenant { slug } }` }),
      });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { data: { tenant: { slug } } });

      // The principal reaches the subgraphs: `me` is the token's user, and nobody for an anonymous caller.
      const asOwner = await fetch(stack.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: `{ me { id email tenant { slug } } }` }),
      });
      assert.deepEqual(await asOwner.json(), { data: { me: { id: ownerId, email: 'ada@token.test', tenant: { slug } } } });
      assert.deepEqual(await graphql(stack.gatewayUrl, `{ me { id } }`), { me: null });
    });

    test('client_credentials trades a live API key for a token of its service account; revoked, expired and unknown keys are refused', async () => {
      const owner: Member = { tenantId, userId: ownerId, slug, email: 'ada@token.test', headers: bearer(await ownerToken()) };
      const key = await serviceKey(stack, owner, { roles: ['viewer'], scopes: ['usage:write'] });
      assert.match(key.secret, new RegExp(`^jvk_${tenantId}\\.`));

      const traded = await requestToken(tokenUrl, { grant_type: 'client_credentials', client_id: key.keyId, client_secret: key.secret });
      assert.equal(traded.status, 200, JSON.stringify(traded.body));
      assert.equal(traded.body.refresh_token, undefined, 'no refresh token for client credentials');
      const claims = decodeJwt(traded.body.access_token as string);
      assert.deepEqual(
        [claims.sub, claims.tid, claims.akid, claims.roles, claims.scope],
        [key.serviceAccountId, tenantId, key.keyId, ['viewer'], 'usage:write'],
      );
      const basic = Buffer.from(`${key.keyId}:${key.secret}`).toString('base64');
      const viaBasic = await fetch(tokenUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
      assert.equal(viaBasic.status, 200);

      // The gateway accepts the key itself as a bearer credential, and records when it was last used.
      const asKey = await as<{ tenant: { slug: string; serviceAccounts: null } }>(stack, key, `{ tenant { slug } }`);
      assert.deepEqual(asKey.tenant, { slug });
      const listed = await as<{ tenant: { serviceAccounts: { apiKeys: { id: string; lastUsedAt: string | null }[] }[] } }>(
        stack,
        owner,
        `{ tenant { serviceAccounts { apiKeys { id lastUsedAt } } } }`,
      );
      const stored = listed.tenant.serviceAccounts.flatMap((a) => a.apiKeys).find((k) => k.id === key.keyId);
      assert.ok(stored?.lastUsedAt && Date.now() - Date.parse(stored.lastUsedAt) < 60_000);

      const wrongId = await requestToken(tokenUrl, { grant_type: 'client_credentials', client_id: randomUUID(), client_secret: key.secret });
      assert.deepEqual([wrongId.status, wrongId.body.error], [401, 'invalid_client']);

      await as(stack, owner, `mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, { id: key.keyId });
      const expired = await serviceKey(stack, owner, { expiresAt: new Date(Date.now() + 1_500).toISOString() });
      await sleep(1_600);
      const forged = `jvk_${tenantId}.${'A'.repeat(43)}`;
      for (const [name, secret] of [['revoked', key.secret], ['expired', expired.secret], ['unknown', forged]] as const) {
        const attempt = await requestToken(tokenUrl, { grant_type: 'client_credentials', client_secret: secret });
        assert.deepEqual([attempt.status, attempt.body.error], [401, 'invalid_client'], name);
        const { status, body } = await postGraphQL(stack.gatewayUrl, `{ tenant { slug } }`, {}, bearer(secret));
        assert.deepEqual([status, body.errors?.[0]?.extensions?.code], [401, 'UNAUTHENTICATED'], name);
      }
    });

    test('a refresh token yields new tokens once; reusing it revokes the whole family', async () => {
      const first = await requestToken(tokenUrl, { grant_type: DEV_LOGIN, tenant: slug, email: 'ada@token.test' });
      const original = first.body.refresh_token as string;
      assert.match(original, new RegExp(`^${tenantId}\\.`));

      const refreshed = await requestToken(tokenUrl, { grant_type: 'refresh_token', refresh_token: original });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.equal(refreshed.cacheControl, 'no-store');
      assert.equal(decodeJwt(refreshed.body.access_token as string).sub, ownerId);
      const successor = refreshed.body.refresh_token as string;
      assert.notEqual(successor, original);

      const replayed = await requestToken(tokenUrl, { grant_type: 'refresh_token', refresh_token: original });
      assert.deepEqual([replayed.status, replayed.body.error], [400, 'invalid_grant']);
      const afterTheft = await requestToken(tokenUrl, { grant_type: 'refresh_token', refresh_token: successor });
      assert.deepEqual([afterTheft.status, afterTheft.body.error], [400, 'invalid_grant'], 'the family is revoked');

      for (const forged of [`${tenantId}.made-up`, 'not-a-token', `${randomUUID()}.${original.split('.')[1]}`]) {
        const attempt = await requestToken(tokenUrl, { grant_type: 'refresh_token', refresh_token: forged });
        assert.deepEqual([attempt.status, attempt.body.error], [400, 'invalid_grant'], forged);
      }
    });

    const refusals: [string, Record<string, string>, string][] = [
      ['an email that is not a member', { grant_type: DEV_LOGIN, tenant: slug, email: 'mallory@token.test' }, 'invalid_grant'],
      ['an unknown tenant', { grant_type: DEV_LOGIN, tenant: 'no-such-tenant', email: 'ada@token.test' }, 'invalid_grant'],
      ['a missing email', { grant_type: DEV_LOGIN, tenant: slug }, 'invalid_request'],
      ['a refresh grant without a token', { grant_type: 'refresh_token' }, 'invalid_request'],
      ['an unsupported grant', { grant_type: 'password', username: 'ada', password: 'x' }, 'unsupported_grant_type'],
    ];
    for (const [name, form, error] of refusals) {
      test(`${name}: 400 ${error}`, async () => {
        const { status, body } = await requestToken(tokenUrl, form);
        assert.equal(status, 400);
        assert.equal(body.error, error);
        assert.equal(body.access_token, undefined);
      });
    }
  });
}

describe('the dev-login grant is off unless configuration turns it on', () => {
  let tenancy: RunningService;
  before(async () => {
    tenancy = await (await createSubgraphServer(tenancySubgraph, testConfig(databaseVariants()[0]!))).start(0);
  });
  after(() => tenancy?.close());

  test('dev-login is refused as an unsupported grant', async () => {
    const { status, body } = await requestToken(tenancy.url.replace(/\/graphql$/, '/oauth/token'), {
      grant_type: DEV_LOGIN,
      tenant: 'demo',
      email: 'owner@demo.test',
    });
    assert.equal(status, 400);
    assert.equal(body.error, 'unsupported_grant_type');
  });
});

for (const variant of databaseVariants()) {
  describe(`a key stored before the scope catalogue, traded at the token endpoint, on ${variant.name}`, { skip: variant.skip }, () => {
    const config = testConfig(variant);
    let tenancy: RunningService;
    let secret: string;
    before(async () => {
      const server = await createSubgraphServer(tenancySubgraph, config);
      // No mutation writes such a key any more: it is put in the table as an older Jarvis could have.
      const tenantId = randomUUID();
      const accountId = randomUUID();
      const raw = randomBytes(32).toString('base64url');
      secret = `jvk_${tenantId}.${raw}`;
      await server.db.withTenant(tenantId, async (tx) => {
        await tx.query(`INSERT INTO tenants (id, name, slug) VALUES ($1, 'Old keys', $2)`, [tenantId, `old-${tenantId.slice(0, 8)}`]);
        await tx.query(`INSERT INTO service_accounts (id, tenant_id, name) VALUES ($1, $2, 'legacy')`, [accountId, tenantId]);
        await tx.query(`INSERT INTO role_assignments (id, tenant_id, role, service_account_id) VALUES ($1, $2, 'viewer', $3)`, [randomUUID(), tenantId, accountId]);
        await tx.query(
          `INSERT INTO api_keys (id, tenant_id, service_account_id, name, secret_hash, scopes) VALUES ($1, $2, $3, 'legacy', $4, $5)`,
          [randomUUID(), tenantId, accountId, createHash('sha256').update(raw).digest('hex'), ['admin:all', 'usage:write', 'jarvis:operator', 'jarvis:meter']],
        );
      });
      tenancy = await server.start(0);
    });
    after(async () => {
      await tenancy?.close();
      if (variant.url) await dropSchemas(variant.url, config.DATABASE_SCHEMA_PREFIX!);
    });

    test('its token carries only the scopes of the catalogue: no made-up or reserved ones', async () => {
      const { status, body } = await requestToken(tenancy.url.replace(/\/graphql$/, '/oauth/token'), { grant_type: 'client_credentials', client_secret: secret });
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.scope, 'usage:write');
      assert.equal(decodeJwt(body.access_token as string).scope, 'usage:write');
    });
  });
}
