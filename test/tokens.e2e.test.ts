import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { createSubgraphServer, graphql, type Config, type RunningService } from '@jarvis/platform';
import { databaseVariants, dropSchemas, testConfig } from '@jarvis/platform/testing';
import { tenancySubgraph } from '@jarvis/tenancy';
import { startStack, type Stack } from '../scripts/stack.ts';

const DEV_LOGIN = 'urn:jarvis:params:oauth:grant-type:dev-login';

async function requestToken(tokenUrl: string, form: Record<string, string>) {
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: response.status, cacheControl: response.headers.get('cache-control'), body: (await response.json()) as Record<string, unknown> };
}

for (const variant of databaseVariants()) {
  describe(`tokens from the tenancy issuer, accepted by the gateway, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: Stack;
    let config: Config;
    let tokenUrl: string;
    const slug = `tok-${randomUUID().slice(0, 8)}`;
    let tenantId: string;
    let ownerId: string;

    before(async () => {
      config = testConfig(variant, { AUTH_DEV_LOGIN: 'true' });
      stack = await startStack(config, { freePorts: true });
      tokenUrl = stack.subgraphUrls.tenancy!.replace(/\/graphql$/, '/oauth/token');
      const created = await graphql<{ createTenant: { tenant: { id: string }; owner: { id: string } } }>(
        stack.gatewayUrl,
        `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } owner { id } } }`,
        { input: { name: 'Token Co', slug, owner: { email: 'Ada@Token.test', name: 'Ada' } } },
      );
      tenantId = created.createTenant.tenant.id;
      ownerId = created.createTenant.owner.id;
    });
    after(async () => {
      await stack?.close();
      if (variant.url && config.DATABASE_SCHEMA_PREFIX) await dropSchemas(variant.url, config.DATABASE_SCHEMA_PREFIX);
    });

    test('dev-login issues a short ES256 access token naming the member and tenant, and the gateway accepts it', async () => {
      const { status, body, cacheControl } = await requestToken(tokenUrl, { grant_type: DEV_LOGIN, tenant: slug, email: 'ada@token.test' });
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(cacheControl, 'no-store');
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.expires_in, config.ACCESS_TOKEN_TTL_SECONDS);
      const token = body.access_token as string;
      assert.deepEqual(decodeProtectedHeader(token).alg, 'ES256');
      const claims = decodeJwt(token);
      assert.deepEqual(
        [claims.sub, claims.tid, claims.iss, claims.aud, claims.exp! - claims.iat!],
        [ownerId, tenantId, config.TOKEN_ISSUER, config.TOKEN_AUDIENCE, config.ACCESS_TOKEN_TTL_SECONDS],
      );

      const response = await fetch(stack.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: `query($id: ID!) { tenant(id: $id) { slug } }`, variables: { id: tenantId } }),
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

    test("a signed-in member cannot read or write another tenant's data, even by naming its id", async () => {
      const neighbour = await graphql<{ createTenant: { tenant: { id: string } } }>(
        stack.gatewayUrl,
        `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }`,
        { input: { name: 'Neighbour', slug: `nb-${randomUUID().slice(0, 8)}`, owner: { email: 'n@nb.test', name: 'N' } } },
      );
      const neighbourId = neighbour.createTenant.tenant.id;
      const { body } = await requestToken(tokenUrl, { grant_type: DEV_LOGIN, tenant: slug, email: 'ada@token.test' });
      const asAda = async (query: string, variables: Record<string, unknown>) => {
        const response = await fetch(stack.gatewayUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${body.access_token}` },
          body: JSON.stringify({ query, variables }),
        });
        return (await response.json()) as { data?: Record<string, unknown> | null; errors?: { path?: unknown[]; extensions?: { code?: string } }[] };
      };

      const read = await asAda(
        `query($own: ID!, $other: ID!) { own: tenant(id: $own) { slug } other: tenant(id: $other) { slug users { email } } }`,
        { own: tenantId, other: neighbourId },
      );
      assert.deepEqual(read.data, { own: { slug }, other: null });
      assert.deepEqual(read.errors?.map((e) => [e.path, e.extensions?.code]), [[['other'], 'FORBIDDEN']]);

      const write = await asAda(`mutation($kb: CreateKnowledgeBaseInput!) { createKnowledgeBase(input: $kb) { id } }`, {
        kb: { tenantId: neighbourId, name: 'Planted' },
      });
      assert.equal(write.errors?.[0]?.extensions?.code, 'FORBIDDEN');
      const neighbourKbs = await graphql<{ tenant: { knowledgeBases: unknown[] } }>(
        stack.gatewayUrl,
        `query($id: ID!) { tenant(id: $id) { knowledgeBases { name } } }`,
        { id: neighbourId },
      );
      assert.deepEqual(neighbourKbs.tenant.knowledgeBases, [], 'nothing was written');
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
