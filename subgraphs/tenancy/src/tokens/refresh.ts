import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { isUuid, type Database, type Transaction } from '@jarvis/platform';

export interface RefreshGrant {
  tenantId: string;
  userId: string;
}

interface StoredRefreshToken {
  id: string;
  userId: string;
  familyId: string;
  expired: boolean;
  used: boolean;
  revoked: boolean;
}

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

/**
 * Opaque refresh tokens `<tenant id>.<secret>`: the tenant part lets the lookup run under that tenant's
 * row-level security; only the secret's hash is stored. Rotated on every use; reuse revokes the family.
 */
export class RefreshTokens {
  constructor(
    private readonly db: Database,
    private readonly lifetimeMs: number,
  ) {}

  issue(grant: RefreshGrant, familyId: string = randomUUID()): Promise<string> {
    return this.db.withTenant(grant.tenantId, (tx) => this.insert(tx, grant, familyId));
  }

  /** Exchanges a refresh token for a new one; undefined when it is unknown, expired, revoked or reused. */
  async redeem(token: string): Promise<{ grant: RefreshGrant; refreshToken: string } | undefined> {
    const [tenantId, secret] = token.split('.');
    if (!tenantId || !secret || !isUuid(tenantId)) return undefined;
    return this.db.withTenant(tenantId, async (tx) => {
      const [stored] = await tx.query<StoredRefreshToken>(
        `SELECT id, user_id AS "userId", family_id AS "familyId", expires_at <= now() AS expired,
                used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`,
        [hash(secret)],
      );
      if (!stored || stored.expired || stored.revoked) return undefined;
      if (stored.used) {
        await tx.query(`UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, [
          stored.familyId,
        ]);
        return undefined;
      }
      await tx.query(`UPDATE refresh_tokens SET used_at = now() WHERE id = $1`, [stored.id]);
      const grant = { tenantId, userId: stored.userId };
      return { grant, refreshToken: await this.insert(tx, grant, stored.familyId) };
    });
  }

  private async insert(tx: Transaction, grant: RefreshGrant, familyId: string): Promise<string> {
    const secret = randomBytes(32).toString('base64url');
    await tx.query(
      `INSERT INTO refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [randomUUID(), grant.tenantId, grant.userId, familyId, hash(secret), new Date(Date.now() + this.lifetimeMs)],
    );
    return `${grant.tenantId}.${secret}`;
  }
}
