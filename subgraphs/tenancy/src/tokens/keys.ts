import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { Database, Transaction } from '@jarvis/platform';
import * as store from './store.ts';

const ALGORITHM = 'ES256';

export interface SigningKey {
  kid: string;
  algorithm: string;
  privateKey: CryptoKey;
}

/**
 * The issuer's ES256 keys, kept in the database so every replica signs with and publishes the same set.
 * A key signs for `rotateAfterMs`, then a new one takes over; a key stays published until every token it
 * signed has expired, so rotation never invalidates a token early.
 */
export class SigningKeys {
  private current?: { key: SigningKey; until: number };

  constructor(
    private readonly db: Database,
    private readonly rotateAfterMs: number,
    private readonly tokenLifetimeMs: number,
  ) {}

  async signingKey(now = Date.now()): Promise<SigningKey> {
    if (this.current && now < this.current.until) return this.current.key;
    const stored = await this.db.withSystem(async (tx) => {
      const newest = await store.newestKey(tx);
      if (newest && now - newest.createdAt.getTime() < this.rotateAfterMs) return newest;
      return this.generate(tx, now);
    });
    const key = { kid: stored.kid, algorithm: stored.algorithm, privateKey: (await importJWK(stored.privateJwk, stored.algorithm)) as CryptoKey };
    this.current = { key, until: stored.createdAt.getTime() + this.rotateAfterMs };
    return key;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    await this.signingKey(); // the first request on a new deployment creates the first key
    const keys = await this.db.withSystem((tx) => store.publishedKeys(tx));
    return { keys: keys.map((key) => key.publicJwk) };
  }

  private async generate(tx: Transaction, now: number): Promise<store.StoredKey> {
    const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { extractable: true });
    const kid = randomUUID();
    const key = {
      kid,
      algorithm: ALGORITHM,
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg: ALGORITHM },
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ALGORITHM, use: 'sig' },
    };
    await store.insertKey(tx, key, new Date(now + this.rotateAfterMs + this.tokenLifetimeMs));
    return { ...key, createdAt: new Date(now) };
  }
}
