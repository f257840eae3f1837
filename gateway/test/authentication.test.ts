import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT, UnsecuredJWT } from 'jose';
import { createAuthenticator } from '@jarvis/gateway/authentication';
import { createGatewayServer } from '@jarvis/gateway';
import { loadConfig } from '@jarvis/platform/config';
import { ANONYMOUS } from '@jarvis/platform/contracts';
import type { RunningService } from '@jarvis/platform/http';
import { testIssuer, testSigningKey, type TestIssuer, type TestSigningKey } from '@jarvis/platform/testing';

const ISSUER = 'https://issuer.jarvis.test';
const AUDIENCE = 'jarvis-api';

describe('gateway authentication with bearer JWTs', () => {
  let issuer: TestIssuer;
  let gateway: RunningService;
  const tenantId = randomUUID();
  const userId = randomUUID();
  const groupId = randomUUID();

  const token = (key: TestSigningKey = issuer.key, edit?: (jwt: SignJWT) => SignJWT) =>
    issuer.sign({ tid: tenantId, roles: ['member'], groups: [groupId, 'not-a-group-id'], scope: 'kb:read chat:use' }, { subject: userId, key, edit });

  async function ask(authorization?: string) {
    const response = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    const body = (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
    return { status: response.status, body, challenge: response.headers.get('www-authenticate') };
  }

  before(async () => {
    issuer = await testIssuer({ issuer: ISSUER, audience: AUDIENCE, kid: 'key-1' });
    const config = loadConfig({
      LOG_LEVEL: 'silent',
      INTERNAL_AUTH_SECRET: randomBytes(32).toString('base64url'),
      ...issuer.env,
    });
    gateway = await (await createGatewayServer(config)).start(0);
  });
  after(async () => {
    await gateway?.close();
    await issuer?.close();
  });

  test('no Authorization header is an anonymous caller', async () => {
    assert.deepEqual((await ask()).body, { data: { __typename: 'Query' } });
  });

  test('a valid token is accepted', async () => {
    const { status, body } = await ask(`Bearer ${await token()}`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.data, { __typename: 'Query' });
  });

  const now = () => Math.floor(Date.now() / 1000);
  const rejected: Record<string, () => Promise<string>> = {
    expired: async () => `Bearer ${await token(issuer.key, (jwt) => jwt.setIssuedAt(now() - 600).setExpirationTime(now() - 60))}`,
    'not yet valid': async () => `Bearer ${await token(issuer.key, (jwt) => jwt.setNotBefore(now() + 600))}`,
    'wrong issuer': async () => `Bearer ${await token(issuer.key, (jwt) => jwt.setIssuer('https://evil.test'))}`,
    'wrong audience': async () => `Bearer ${await token(issuer.key, (jwt) => jwt.setAudience('someone-else'))}`,
    'alg none': async () =>
      `Bearer ${new UnsecuredJWT({ tid: tenantId }).setSubject(userId).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').encode()}`,
    'HS256 signed with the public key': async () => {
      const secret = new TextEncoder().encode(JSON.stringify(issuer.key.publicJwk));
      const forged = await new SignJWT({ tid: tenantId })
        .setProtectedHeader({ alg: 'HS256', kid: issuer.key.kid })
        .setSubject(userId)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(secret);
      return `Bearer ${forged}`;
    },
    'unknown key id': async () => `Bearer ${await token(await testSigningKey('never-published'))}`,
    'tampered payload': async () => {
      const [header, payload, signature] = (await token()).split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
      const edited = Buffer.from(JSON.stringify({ ...claims, tid: randomUUID() })).toString('base64url');
      return `Bearer ${header}.${edited}.${signature}`;
    },
    'no tenant claim': async () => `Bearer ${await issuer.sign({}, { subject: userId })}`,
    'not a bearer token': async () => 'Basic dXNlcjpwYXNz',
    'garbage after Bearer': async () => 'Bearer not.a.jwt',
  };

  for (const [name, authorization] of Object.entries(rejected)) {
    test(`${name}: 401 UNAUTHENTICATED with a Bearer challenge`, async () => {
      const { status, body, challenge } = await ask(await authorization());
      assert.equal(status, 401, JSON.stringify(body));
      assert.equal(body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      assert.equal(body.data, undefined);
      assert.match(challenge ?? '', /^Bearer/);
    });
  }

  test('after key rotation, tokens signed with the old key stay valid until they expire', async () => {
    const authenticate = createAuthenticator([{ issuer: ISSUER, audience: AUDIENCE, jwksUrl: issuer.jwksUrl }], {
      clockToleranceSeconds: 0,
      jwksCooldownMs: 200,
    });
    const old = issuer.key;
    const oldToken = await token(old);
    const shortLived = await token(old, (jwt) => jwt.setExpirationTime(now() + 2));
    assert.equal((await authenticate(`Bearer ${oldToken}`)).userId, userId);

    await issuer.rotate('key-2'); // the issuer publishes the new key and keeps the old one a while
    await sleep(250); // past the JWKS refetch cooldown
    assert.equal((await authenticate(`Bearer ${await token()}`)).userId, userId, 'the new key is picked up');
    assert.equal((await authenticate(`Bearer ${oldToken}`)).userId, userId, 'an old token still verifies');

    await sleep(3_000); // past the short-lived token's expiry
    await assert.rejects(authenticate(`Bearer ${shortLived}`), /exp/, 'an old token is refused once expired');
    assert.equal((await ask(`Bearer ${oldToken}`)).status, 200, 'and through the gateway an unexpired old token works');
  });

  test('the principal carries tenant, user, roles, groups and scopes from the token', async () => {
    const authenticate = createAuthenticator([{ issuer: ISSUER, audience: AUDIENCE, jwksUrl: issuer.jwksUrl }]);
    assert.deepEqual(await authenticate(`Bearer ${await token()}`), {
      tenantId,
      userId,
      roles: ['member'],
      scopes: ['kb:read', 'chat:use'],
      permissions: [],
      groups: [groupId],
      isolation: 'SHARED',
    });
  });

  test("Jarvis's own scopes never come from a token, whoever signed it", async () => {
    const authenticate = createAuthenticator([{ issuer: ISSUER, audience: AUDIENCE, jwksUrl: issuer.jwksUrl }]);
    const claims = { tid: tenantId, scope: 'jarvis:operator usage:write jarvis:meter' };
    const principal = await authenticate(`Bearer ${await issuer.sign(claims, { subject: userId })}`);
    assert.deepEqual(principal.scopes, ['usage:write']);
  });

  test('the operator credential, and only it, yields the operator; without one configured nothing does', async () => {
    const operatorToken = randomBytes(32).toString('base64url');
    const authenticate = createAuthenticator([], { operatorToken });
    assert.deepEqual(await authenticate(`Bearer ${operatorToken}`), { ...ANONYMOUS, scopes: ['jarvis:operator'] });
    await assert.rejects(authenticate(`Bearer ${operatorToken.slice(1)}`), /UNAUTHENTICATED|Bearer/);
    await assert.rejects(createAuthenticator([])(`Bearer ${operatorToken}`), /Bearer/);
  });
});
