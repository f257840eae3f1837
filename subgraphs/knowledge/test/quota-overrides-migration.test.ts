/**
 * `quota_overrides` moved from knowledge's own migrations (the retired 0008, kept here as a fixture) to platform's
 * quota-overrides module. A schema built before the move takes the new migrations and keeps its overrides: one
 * that ran 0008 as it is, one older than 0008 with the storage limits 0005 kept, which 0009 moves over.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { Database } from '@jarvis/platform/db';
import { QUOTA_OVERRIDES_MIGRATIONS, quotaOverrides } from '@jarvis/platform/quota-overrides';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));
const RETIRED = fileURLToPath(new URL('fixtures/retired-migrations/', import.meta.url));

/** Knowledge's migrations as they were before `last` was written: the current files before it, and the retired ones up to it. */
function migrationsUpTo(last: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'knowledge-migrations-'));
  for (const from of [MIGRATIONS, RETIRED]) {
    for (const file of readdirSync(from).filter((name) => name <= last)) copyFileSync(join(from, file), join(dir, file));
  }
  return dir;
}

const migrateToNow = (db: Database) => db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
const overridesOf = (db: Database, tenantId: string) => db.withTenant(tenantId, (tx) => quotaOverrides(tx));

for (const variant of databaseVariants()) {
  describe(`quota_overrides in an existing knowledge schema, on ${variant.name}`, { skip: variant.skip }, () => {
    test('a schema that ran the retired 0008 keeps its overrides and takes the new migrations', async () => {
      const db = await openTestDatabase(variant, 'knowledge');
      try {
        await db.migrate(migrationsUpTo('0008_quota_overrides.sql'));
        const tenantId = randomUUID();
        await db.withTenant(tenantId, (tx) =>
          tx.query(`INSERT INTO quota_overrides (tenant_id, tokens_per_day, storage_bytes, changed_at) VALUES ($1, 100, 5000, now())`, [tenantId]),
        );
        assert.deepEqual(await migrateToNow(db), ['quota-overrides/0001_quota_overrides.sql', '0009_storage_limits_to_quota_overrides.sql']);
        assert.deepEqual(await overridesOf(db, tenantId), { tokensPerDay: 100, tokensPerMonth: null, storageBytes: 5000, concurrentStreams: null });
        assert.deepEqual(await overridesOf(db, randomUUID()), { tokensPerDay: null, tokensPerMonth: null, storageBytes: null, concurrentStreams: null });
      } finally {
        await db.close();
      }
    });

    test('a schema older than 0008 gets quota_overrides with its storage limits, and storage_limits is gone', async () => {
      const db = await openTestDatabase(variant, 'knowledge');
      try {
        await db.migrate(migrationsUpTo('0007_document_status_notify.sql'));
        const tenantId = randomUUID();
        await db.withTenant(tenantId, (tx) => tx.query(`INSERT INTO storage_limits (tenant_id, storage_bytes, changed_at) VALUES ($1, 4096, now())`, [tenantId]));
        await migrateToNow(db);
        assert.deepEqual(await overridesOf(db, tenantId), { tokensPerDay: null, tokensPerMonth: null, storageBytes: 4096, concurrentStreams: null });
        const [left] = await db.withSystem((tx) => tx.query<{ table: string | null }>(`SELECT to_regclass($1)::text AS table`, [`${db.schema}.storage_limits`]));
        assert.equal(left?.table, null);
      } finally {
        await db.close();
      }
    });
  });
}
