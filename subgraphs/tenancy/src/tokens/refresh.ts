import { randomUUID } from 'node:crypto';
import type { Database, Transaction } from '@jarvis/platform/db';
import { newTenantSecret, parseTenantSecret } from '../secrets.ts';

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

/** Opaque refresh tokens (see `newTenantSecret`), rotated on every use; reuse revokes the whole family. */
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
    const parsed = parseTenantSecret('', token);
    if (!parsed) return undefined;
    const { tenantId, hash } = parsed;
    return this.db.withTenant(tenantId, async (tx) => {
      const [stored] = await tx.query<StoredRefreshToken>(
        `SELECT id, user_id AS "userId", family_id AS "familyId", expires_at <= now() AS expired,
                used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`,
        [hash],
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
    const { token, hash } = newTenantSecret('', grant.tenantId);
    await tx.query(
      `INSERT INTO refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [randomUUID(), grant.tenantId, grant.userId, familyId, hash, new Date(Date.now() + this.lifetimeMs)],
    );
    return token;
  }
}
