import type { Transaction } from '@jarvis/platform/db';
import type { JWK } from 'jose';

export interface StoredKey {
  kid: string;
  algorithm: string;
  /** Exactly one of the two: the private key in the clear, or sealed (see key-wrapping.ts). */
  privateJwk: JWK | null;
  privateJwe: string | null;
  publicJwk: JWK;
  createdAt: Date;
}

const COLUMNS = `kid, algorithm, private_jwk AS "privateJwk", private_jwe AS "privateJwe", public_jwk AS "publicJwk",
  created_at AS "createdAt"`;

export async function newestKey(tx: Transaction): Promise<StoredKey | undefined> {
  const [row] = await tx.query<StoredKey>(`SELECT ${COLUMNS} FROM system_signing_keys ORDER BY created_at DESC LIMIT 1`);
  return row;
}

export function publishedKeys(tx: Transaction): Promise<StoredKey[]> {
  return tx.query<StoredKey>(`SELECT ${COLUMNS} FROM system_signing_keys WHERE retire_at > now() ORDER BY created_at DESC`);
}

export async function insertKey(tx: Transaction, key: Omit<StoredKey, 'createdAt'>, retireAt: Date): Promise<void> {
  await tx.query(
    `INSERT INTO system_signing_keys (kid, algorithm, private_jwk, private_jwe, public_jwk, retire_at) VALUES ($1, $2, $3, $4, $5, $6)`,
    [key.kid, key.algorithm, key.privateJwk && JSON.stringify(key.privateJwk), key.privateJwe, JSON.stringify(key.publicJwk), retireAt],
  );
}
