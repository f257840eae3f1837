import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { ConfigError } from '@jarvis/platform/config';
import type { Database, Transaction } from '@jarvis/platform/db';
import type { KeyWrapping } from './key-wrapping.ts';
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
 * signed has expired, so rotation never invalidates a token early. With a key wrapping, new private keys are
 * stored sealed; keys stored in the clear before it was configured stay usable until they retire.
 */
export class SigningKeys {
  private current?: { key: SigningKey; until: number };

  constructor(
    private readonly db: Database,
    private readonly rotateAfterMs: number,
    private readonly tokenLifetimeMs: number,
    private readonly wrapping?: KeyWrapping,
  ) {}

  async signingKey(now = Date.now()): Promise<SigningKey> {
    if (this.current && now < this.current.until) return this.current.key;
    const stored = await this.db.withSystem(async (tx) => {
      const newest = await store.newestKey(tx);
      if (newest && now - newest.createdAt.getTime() < this.rotateAfterMs) return newest;
      return this.generate(tx, now);
    });
    const privateJwk = await this.privateJwk(stored);
    const key = { kid: stored.kid, algorithm: stored.algorithm, privateKey: (await importJWK(privateJwk, stored.algorithm)) as CryptoKey };
    this.current = { key, until: stored.createdAt.getTime() + this.rotateAfterMs };
    return key;
  }

  private async privateJwk(stored: store.StoredKey): Promise<JWK> {
    if (stored.privateJwk) return stored.privateJwk;
    if (!this.wrapping) throw new ConfigError('the signing keys are stored encrypted: set SIGNING_KEY_SECRET to the secret they were sealed with');
    try {
      return await this.wrapping.open(stored.privateJwe!);
    } catch {
      throw new ConfigError('SIGNING_KEY_SECRET does not open the stored signing keys: it must be the secret they were sealed with');
    }
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    await this.signingKey(); // the first request on a new deployment creates the first key
    const keys = await this.db.withSystem((tx) => store.publishedKeys(tx));
    return { keys: keys.map((key) => key.publicJwk) };
  }

  private async generate(tx: Transaction, now: number): Promise<store.StoredKey> {
    const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { extractable: true });
    const kid = randomUUID();
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: ALGORITHM };
    const key = {
      kid,
      algorithm: ALGORITHM,
      privateJwk: this.wrapping ? null : privateJwk,
      privateJwe: this.wrapping ? await this.wrapping.seal(privateJwk) : null,
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ALGORITHM, use: 'sig' },
    };
    await store.insertKey(tx, key, new Date(now + this.rotateAfterMs + this.tokenLifetimeMs));
    return { ...key, createdAt: new Date(now) };
  }
}
