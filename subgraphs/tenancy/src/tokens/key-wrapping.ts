import { hkdfSync } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, type JWK } from 'jose';

/**
 * Private signing keys at rest: sealed as a JWE (direct AES-256-GCM) under a key derived from the
 * deployment's SIGNING_KEY_SECRET, so a copy of the database alone does not let anyone mint tokens.
 */
export function keyWrapping(secret: string) {
  const key = new Uint8Array(hkdfSync('sha256', secret, 'jarvis', 'tenancy signing keys', 32));
  return {
    seal: (jwk: JWK): Promise<string> =>
      new CompactEncrypt(new TextEncoder().encode(JSON.stringify(jwk))).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(key),
    async open(jwe: string): Promise<JWK> {
      const { plaintext } = await compactDecrypt(jwe, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
      return JSON.parse(new TextDecoder().decode(plaintext)) as JWK;
    },
  };
}

export type KeyWrapping = ReturnType<typeof keyWrapping>;
