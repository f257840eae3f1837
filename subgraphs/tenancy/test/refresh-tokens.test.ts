import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Database } from '@jarvis/platform/db';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';
import { insertTenant, insertUser } from '../src/tenants/store.ts';
import { RefreshTokens } from '../src/tokens/refresh.ts';

for (const variant of databaseVariants()) {
  describe(`refresh tokens on ${variant.name}`, { skip: variant.skip }, () => {
    const tenantId = randomUUID();
    const userId = randomUUID();
    let db: Database;
    before(async () => {
      db = await openTestDatabase(variant, 'tenancy');
      await db.migrate(fileURLToPath(new URL('../migrations/', import.meta.url)));
      await db.withTenant(tenantId, async (tx) => {
        await insertTenant(tx, { id: tenantId, name: 'R', slug: `r-${tenantId.slice(0, 8)}`, plan: 'FREE', isolation: 'SHARED' });
        await insertUser(tx, { id: userId, tenantId, email: 'r@r.test', name: 'R' });
      });
    });
    after(() => db?.close());

    test('an expired refresh token is refused', async () => {
      const expiring = new RefreshTokens(db, 50);
      const token = await expiring.issue({ tenantId, userId });
      await sleep(100);
      assert.equal(await expiring.redeem(token), undefined);
    });

    test('two concurrent redemptions of one token: one wins, and the family is revoked', async () => {
      const tokens = new RefreshTokens(db, 60_000);
      const token = await tokens.issue({ tenantId, userId });
      const results = await Promise.all([tokens.redeem(token), tokens.redeem(token)]);
      const winners = results.filter(Boolean);
      assert.equal(winners.length, 1);
      assert.equal(await tokens.redeem(winners[0]!.refreshToken), undefined, 'the replay revoked the successor too');
    });

    test('only a hash is stored', async () => {
      const tokens = new RefreshTokens(db, 60_000);
      const token = await tokens.issue({ tenantId, userId });
      const secret = token.split('.')[1]!;
      const rows = await db.withTenant(tenantId, (tx) =>
        tx.query(`SELECT 1 FROM refresh_tokens WHERE token_hash = $1 OR token_hash LIKE $2`, [secret, `%${secret.slice(0, 12)}%`]),
      );
      assert.equal(rows.length, 0);
    });
  });
}
