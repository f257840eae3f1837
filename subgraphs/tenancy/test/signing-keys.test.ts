import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import type { Database } from '@jarvis/platform';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';
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

    test('the application role cannot read the private keys', async () => {
      await assert.rejects(
        db.withTenant(crypto.randomUUID(), (tx) => tx.query(`SELECT private_jwk FROM system_signing_keys`)),
        /permission denied/,
      );
    });
  });
}
