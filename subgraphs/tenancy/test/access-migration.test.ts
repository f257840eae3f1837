import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Database } from '@jarvis/platform/db';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));

/** The migrations as they stood before roles existed. */
function migrationsBefore(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-migrations-'));
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith('.sql') && f < name)) {
    copyFileSync(join(MIGRATIONS, file), join(dir, file));
  }
  return dir;
}

for (const variant of databaseVariants()) {
  describe(`upgrading tenancy to roles on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database;
    const tenantId = randomUUID();
    const founder = randomUUID();
    const colleague = randomUUID();

    before(async () => {
      db = await openTestDatabase(variant, 'tenancy');
      await db.migrate(migrationsBefore('0004'));
      await db.withTenant(tenantId, async (tx) => {
        await tx.query(`INSERT INTO tenants (id, name, slug) VALUES ($1, 'Old', $2)`, [tenantId, `old-${tenantId.slice(0, 8)}`]);
        await tx.query(`INSERT INTO users (id, tenant_id, email, name, created_at) VALUES ($1, $2, 'f@old.test', 'F', now() - interval '1 day')`, [founder, tenantId]);
        await tx.query(`INSERT INTO users (id, tenant_id, email, name) VALUES ($1, $2, 'c@old.test', 'C')`, [colleague, tenantId]);
      });
    });
    after(() => db?.close());

    test("an existing tenant's first user becomes its owner, and nobody else gains a role", async () => {
      assert.equal((await db.migrate(MIGRATIONS))[0], '0004_access.sql');
      const held = await db.withTenant(tenantId, (tx) =>
        tx.query<{ role: string; user_id: string }>(`SELECT role, user_id FROM role_assignments`),
      );
      assert.deepEqual(held, [{ role: 'owner', user_id: founder }]);
    });
  });
}
