import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import type { Database } from '@jarvis/platform/db';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';
import { keyWrapping } from '../src/tokens/key-wrapping.ts';
import { SigningKeys } from '../src/tokens/keys.ts';

const HOUR = 3_600_000;

for (const variant of databaseVariants()) {
  describe(`issuer signing keys on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database;
    before(async () => {
      db = await openTestDatabase(variant, 'tenancy');
      await db.migrate(fileURLToPath(new URL('../migrations/', import.meta.url)));
    });
    after(() => db?.close());

    test('the JWKS publishes public keys only, and replicas sign with the same key', async () => {
      const keys = new SigningKeys(db, 24 * HOUR, 900_000);
      const { keys: published } = await keys.jwks();
      assert.equal(published.length, 1);
      assert.equal(published[0]!.alg, 'ES256');
      assert.equal(published[0]!.d, undefined, 'no private key material');
      const replica = new SigningKeys(db, 24 * HOUR, 900_000);
      assert.equal((await replica.signingKey()).kid, published[0]!.kid);
    });

    test('after rotation the new key signs, and tokens of the old key still verify against the JWKS', async () => {
      const keys = new SigningKeys(db, 24 * HOUR, 900_000);
      const old = await keys.signingKey();
      const sign = (key: typeof old) =>
        new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setExpirationTime('5m').sign(key.privateKey);
      const oldToken = await sign(old);

      const rotated = await keys.signingKey(Date.now() + 25 * HOUR);
      assert.notEqual(rotated.kid, old.kid);
      const jwks = createLocalJWKSet(await keys.jwks());
      await jwtVerify(oldToken, jwks);
      await jwtVerify(await sign(rotated), jwks);
    });

    test('with a key wrapping, private keys are stored sealed, and only the same secret opens them', async () => {
      const secret = 's'.repeat(40);
      // A rotation period of 1 ms makes this one sign with a new key; the instances below reuse it.
      const sealed = await new SigningKeys(db, 1, 900_000, keyWrapping(secret)).signingKey(Date.now() + 10);
      const [row] = await db.withSystem((tx) =>
        tx.query<{ private_jwk: unknown; private_jwe: string }>(`SELECT private_jwk, private_jwe FROM system_signing_keys WHERE kid = $1`, [sealed.kid]),
      );
      assert.equal(row!.private_jwk, null);
      assert.equal(row!.private_jwe.split('.').length, 5, 'a compact JWE');
      const { d, kid } = await keyWrapping(secret).open(row!.private_jwe);
      assert.equal(kid, sealed.kid);
      assert.ok(d && !row!.private_jwe.includes(d), 'the private key is not readable in the row');

      assert.equal((await new SigningKeys(db, 24 * HOUR, 900_000, keyWrapping(secret)).signingKey()).kid, sealed.kid);
      await assert.rejects(new SigningKeys(db, 24 * HOUR, 900_000, keyWrapping('x'.repeat(40))).signingKey(), /does not open/);
      await assert.rejects(new SigningKeys(db, 24 * HOUR, 900_000).signingKey(), /set SIGNING_KEY_SECRET/);
    });

    test('the application role cannot read the private keys', async () => {
      await assert.rejects(
        db.withTenant(crypto.randomUUID(), (tx) => tx.query(`SELECT private_jwk FROM system_signing_keys`)),
        /permission denied/,
      );
    });
  });
}
