/**
 * A tenant trusts its own OpenID Connect issuer (here a local one that publishes a JWKS as any issuer does):
 * the gateway trades that issuer's tokens at tenancy's token endpoint (RFC 8693) for Jarvis tokens of that
 * tenant, with members found by email or provisioned, and roles mapped from a claim.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { bearer, requestToken } from '@jarvis/platform/client';
import { TOKEN_EXCHANGE_GRANT } from '@jarvis/platform/contracts';
import { databaseVariants, testIssuer, testSigningKey, type TestIssuer } from '@jarvis/platform/testing';
import { as, respond, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const ISSUER = 'https://login.example.test';

for (const variant of databaseVariants()) {
  describe(`external issuers trusted by a tenant, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let issuer: TestIssuer;
    let acme: Member;
    let other: Member;
    const ME = `{ me { email roles permissions tenant { id } } }`;

    before(async () => {
      issuer = await testIssuer({ issuer: ISSUER, audience: 'jarvis-acme', kid: 'k1' });
      // The local issuer is on 127.0.0.1, which tenant-set URLs reach only where the operator allows it.
      const outbound = { TRUSTED_ISSUER_ALLOW_HTTP: 'true', OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' };
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', ...outbound, TOKEN_EXCHANGE_CACHE_SECONDS: '0' });
      acme = await signUp(stack, 'acme');
      other = await signUp(stack, 'other');
      const trust = `mutation($input: TrustedIssuerInput!) { addTrustedIssuer(input: $input) { id roleMapping { value role } } }`;
      const added = await as<{ addTrustedIssuer: { roleMapping: unknown[] } }>(stack, acme, trust, {
        input: { issuer: ISSUER, jwksUrl: issuer.jwksUrl, audience: 'jarvis-acme', rolesClaim: 'groups', roleMapping: [{ value: 'eng', role: 'member' }], provisionUsers: true },
      });
      assert.deepEqual(added.addTrustedIssuer.roleMapping, [{ value: 'eng', role: 'member' }]);
      // The same issuer, another audience: the neighbour's own app registration, without provisioning.
      await as(stack, other, trust, { input: { issuer: ISSUER, jwksUrl: issuer.jwksUrl, audience: 'jarvis-other' } });
    });
    after(async () => {
      await stack?.close();
      await issuer?.close();
    });

    test('a new person is provisioned into the trusting tenant with the roles its groups map to', async () => {
      const token = await issuer.sign({ email: 'Grace@Acme.test', name: 'Grace', groups: ['eng', 'unmapped'] });
      const { me } = await as<{ me: { email: string; roles: string[]; permissions: string[]; tenant: { id: string } } }>(stack, { headers: bearer(token) }, ME);
      assert.deepEqual([me.email, me.tenant.id, me.roles], ['grace@acme.test', acme.tenantId, []], 'no role is stored');

      // The mapped role lives in the tokens the exchange issues, so the issuer's groups stay the source of truth.
      const exchanged = await requestToken(stack.tokenUrl, {
        grant_type: TOKEN_EXCHANGE_GRANT,
        subject_token: token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      });
      assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
      assert.equal(exchanged.body.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
      const claims = decodeJwt(exchanged.body.access_token as string);
      assert.deepEqual([claims.tid, claims.roles], [acme.tenantId, ['member']]);
      const permissions = claims.permissions as string[];
      assert.ok(permissions.includes('kb:write') && !permissions.includes('members:manage'), permissions.join());
      const created = await as<{ createKnowledgeBase: { name: string } }>(stack, { headers: bearer(token) }, `mutation { createKnowledgeBase(input: { name: "From SSO" }) { name } }`);
      assert.deepEqual(created.createKnowledgeBase, { name: 'From SSO' });
    });

    test('an existing member signs in as itself; a token for the other audience lands in the other tenant', async () => {
      const owner = await as<{ me: { email: string; roles: string[] } }>(stack, { headers: bearer(await issuer.sign({ email: acme.email })) }, ME);
      assert.deepEqual([owner.me.email, owner.me.roles], [acme.email, ['owner']]);
      const neighbour = await as<{ me: { tenant: { id: string } } }>(stack, { headers: bearer(await issuer.sign({ email: other.email }, { audience: 'jarvis-other' })) }, ME);
      assert.equal(neighbour.me.tenant.id, other.tenantId);
    });

    test('tokens that are expired, for an untrusted audience or issuer, signed by another key, or naming nobody are refused', async () => {
      const stranger = await testSigningKey('k1');
      const refused = {
        expired: await issuer.sign({ email: acme.email }, { expiresIn: '-1m' }),
        'unknown audience': await issuer.sign({ email: acme.email }, { audience: 'someone-else' }),
        'untrusted issuer': await issuer.sign({ email: acme.email }, { issuer: 'https://evil.example.test' }),
        'another key': await issuer.sign({ email: acme.email }, { key: stranger }),
        // the neighbour does not provision: a stranger's email finds nobody there
        'no member, no provisioning': await issuer.sign({ email: 'nobody@other.test' }, { audience: 'jarvis-other' }),
        'no email claim': await issuer.sign({ groups: ['eng'] }),
      };
      for (const [name, token] of Object.entries(refused)) {
        const response = await respond(stack, { headers: bearer(token) }, ME);
        assert.deepEqual([response.status, response.errors?.[0]?.extensions?.code], [401, 'UNAUTHENTICATED'], name);
      }
    });

    test('a tenant lists the issuers it trusts, and an issuer and audience belong to one tenant only', async () => {
      const { tenant } = await as<{ tenant: { trustedIssuers: { issuer: string; audience: string }[] } }>(stack, acme, `{ tenant { trustedIssuers { issuer audience } } }`);
      assert.deepEqual(tenant.trustedIssuers, [{ issuer: ISSUER, audience: 'jarvis-acme' }]);
      const duplicate = await respond(stack, other, `mutation { addTrustedIssuer(input: { issuer: "${ISSUER}", jwksUrl: "${issuer.jwksUrl}", audience: "jarvis-acme" }) { id } }`);
      assert.equal(duplicate.errors?.[0]?.extensions?.code, 'CONFLICT', 'one tenant per issuer and audience');
    });
  });
}
