/**
 * Tenant-set URLs pass the outbound guard, end to end: a tenant cannot trust an issuer whose JWKS URL points
 * inside the deployment, and an issuer trusted while the operator allowed its host (OUTBOUND_ALLOWED_HOSTS) is
 * not fetched once the operator no longer does — its tokens are refused and its host sees no connection.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { bearer } from '@jarvis/platform/client';
import { databaseVariants, dropSchemas, testConfig, testSigningKey, uniqueSchemaPrefix, type DatabaseVariant } from '@jarvis/platform/testing';
import { startStack } from '../scripts/stack.ts';
import { as, dropOwnServiceState, respond, signIn, signUp, type Member, type TestStack } from './helpers.ts';

const ISSUER = 'https://login.outbound.test';
const AUDIENCE = 'jarvis-outbound';
const TRUST = `mutation($input: TrustedIssuerInput!) { addTrustedIssuer(input: $input) { id } }`;
const TRUSTED = `{ tenant { trustedIssuers { jwksUrl } } }`;
const ME = `{ me { email } }`;

/** An issuer's JWKS on 127.0.0.1 that counts the connections it accepts, and tokens signed with its key. */
async function countingIssuer() {
  const key = await testSigningKey('outbound-key');
  let connections = 0;
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.publicJwk] }));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    jwksUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    get connections() {
      return connections;
    },
    sign: (email: string) =>
      new SignJWT({ email })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(randomUUID())
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key.privateKey),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Stacks that run one after another on the same data (one PGlite directory, or one schema prefix): unlike
 * `startTestStack`'s, closing one keeps its schemas, so the next finds what the first saved.
 */
async function sharedStorage(variant: DatabaseVariant) {
  const prefix = uniqueSchemaPrefix();
  const directory = variant.url ? undefined : await mkdtemp(join(tmpdir(), 'jarvis-outbound-'));
  const storage: Record<string, string> = directory ? { DATA_DIR: directory } : { DATABASE_SCHEMA_PREFIX: prefix };
  return {
    async start(overrides: Record<string, string>): Promise<TestStack> {
      const settings = { AUTH_DEV_LOGIN: 'true', TRUSTED_ISSUER_ALLOW_HTTP: 'true', TOKEN_EXCHANGE_CACHE_SECONDS: '0' };
      const config = testConfig(variant, { ...settings, ...storage, ...overrides });
      const stack = await startStack(config, { freePorts: true });
      return { ...stack, config, close: () => stack.close().then(() => dropOwnServiceState(config)) };
    },
    async remove() {
      if (variant.url) await dropSchemas(variant.url, prefix);
      if (directory) await rm(directory, { recursive: true, force: true });
    },
  };
}

for (const variant of databaseVariants()) {
  describe(`outbound calls to tenant-set URLs, on ${variant.name}`, { skip: variant.skip }, () => {
    let storage: Awaited<ReturnType<typeof sharedStorage>>;
    let issuer: Awaited<ReturnType<typeof countingIssuer>>;
    let stack: TestStack | undefined;
    let acme: Member;

    before(async () => {
      issuer = await countingIssuer();
      storage = await sharedStorage(variant);
      // First the operator allows the issuer's host: the tenant trusts it, and its members sign in with it.
      const allowing = await storage.start({ OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' });
      try {
        acme = await signUp(allowing, 'acme');
        await as(allowing, acme, TRUST, { input: { issuer: ISSUER, jwksUrl: issuer.jwksUrl, audience: AUDIENCE } });
        const { me } = await as<{ me: { email: string } }>(allowing, { headers: bearer(await issuer.sign(acme.email)) }, ME);
        assert.equal(me.email, acme.email);
        assert.ok(issuer.connections > 0, 'the JWKS was fetched while allowed');
      } finally {
        await allowing.close();
      }
      // Then the same deployment without that allowance.
      stack = await storage.start({});
      acme = await signIn(stack, acme, acme.email, acme.userId);
    });
    after(async () => {
      await stack?.close();
      await storage?.remove();
      await issuer?.close();
    });

    test('a JWKS URL on a loopback, private or link-local address, or one that does not resolve, is refused and nothing is saved', async () => {
      const refused = {
        'https://127.0.0.1:8443/jwks.json': /^jwksUrl points to a loopback address$/,
        'https://localhost/jwks.json': /^jwksUrl resolves to a loopback address$/,
        'https://[::1]/jwks.json': /^jwksUrl points to a loopback address$/,
        'https://2130706433/jwks.json': /^jwksUrl points to a loopback address$/,
        'https://127.1/jwks.json': /^jwksUrl points to a loopback address$/,
        'https://10.0.0.1/jwks.json': /^jwksUrl points to a private address$/,
        'https://169.254.169.254/latest/meta-data/': /^jwksUrl points to a link-local address$/,
        'https://[fd00:ec2::254]/': /^jwksUrl points to a unique-local address$/,
        'https://100.100.100.200/': /^jwksUrl points to a carrier-grade NAT address$/,
        [issuer.jwksUrl]: /^jwksUrl points to a loopback address$/,
        'https://jwks.invalid/keys': /^jwksUrl does not resolve$/,
      };
      for (const [jwksUrl, message] of Object.entries(refused)) {
        const response = await respond(stack!, acme, TRUST, { input: { issuer: `https://other-${randomUUID()}.test`, jwksUrl, audience: AUDIENCE } });
        const error = response.errors?.[0];
        assert.deepEqual([error?.extensions?.code, error?.extensions?.field], ['BAD_USER_INPUT', 'jwksUrl'], jwksUrl);
        assert.match(error!.message, message, jwksUrl);
      }
      const { tenant } = await as<{ tenant: { trustedIssuers: { jwksUrl: string }[] } }>(stack!, acme, TRUSTED);
      assert.deepEqual(tenant.trustedIssuers, [{ jwksUrl: issuer.jwksUrl }], 'only the issuer trusted while it was allowed');
    });

    test('an issuer trusted while its host was allowed is not fetched once it is not: its token gets 401 and its host no connection', async () => {
      const connections = issuer.connections;
      const response = await respond(stack!, { headers: bearer(await issuer.sign(acme.email)) }, ME);
      assert.deepEqual([response.status, response.errors?.[0]?.extensions?.code], [401, 'UNAUTHENTICATED']);
      assert.equal(issuer.connections, connections, 'tenancy did not connect to the refused address');
    });
  });
}
