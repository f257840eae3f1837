import { createHash, randomBytes } from 'node:crypto';
import { isUuid } from '@jarvis/platform/ids';

/**
 * Opaque secrets handed out once — refresh tokens, API keys, invitations — shaped `<prefix><tenant id>.<secret>`:
 * the tenant part lets the lookup run under that tenant's row-level security, and only the secret's SHA-256
 * hash is stored.
 */
/** Invitations' prefix: `jvi_<tenant id>.<secret>`. */
export const INVITATION_PREFIX = 'jvi_';

export function newTenantSecret(prefix: string, tenantId: string): { token: string; hash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { token: `${prefix}${tenantId}.${secret}`, hash: hashSecret(secret) };
}

/** The tenant and secret hash of a token made by `newTenantSecret` with that prefix; undefined if malformed. */
export function parseTenantSecret(prefix: string, token: string): { tenantId: string; hash: string } | undefined {
  if (!token.startsWith(prefix)) return undefined;
  const [tenantId, secret, ...rest] = token.slice(prefix.length).split('.');
  if (!tenantId || !secret || rest.length || !isUuid(tenantId)) return undefined;
  return { tenantId, hash: hashSecret(secret) };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
