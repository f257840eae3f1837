import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ANONYMOUS, type Principal } from '@jarvis/platform/contracts';
import { dedicatedSchemaName, MigrationError, scopeToPrincipal, type Database } from '@jarvis/platform/db';
import { tenantLoader } from '@jarvis/platform/subgraph';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';

const NOTES_MIGRATION = `
  CREATE TABLE system_secrets (name text PRIMARY KEY, value text NOT NULL);
  INSERT INTO system_secrets VALUES ('signing-key', 'do not leak');
  CREATE TABLE notes (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL CHECK (body <> ''));
  ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
  ALTER TABLE notes FORCE ROW LEVEL SECURITY;
  CREATE POLICY tenant_isolation ON notes
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
`;

const LABELS_MIGRATION = `
  CREATE TABLE labels (tenant_id uuid NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, name));
  ALTER TABLE labels ENABLE ROW LEVEL SECURITY;
  ALTER TABLE labels FORCE ROW LEVEL SECURITY;
  CREATE POLICY tenant_isolation ON labels USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
`;

function migrationsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-migrations-'));
  for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql);
  return dir;
}

const signedIn = (tenantId: string, isolation: Principal['isolation'] = 'SHARED'): Principal => ({
  tenantId,
  roles: [],
  scopes: [],
  permissions: [],
  isolation,
});

for (const variant of databaseVariants()) {
  describe(`database port on ${variant.name}`, { skip: variant.skip }, () => {
    const dir = migrationsDir({ '0001_notes.sql': NOTES_MIGRATION });
    let db: Database;
    const tenantA = randomUUID();
    const tenantB = randomUUID();
    const insertNote = (tenantId: string, body: string) =>
      db.withTenant(tenantId, (tx) =>
        tx.query(`INSERT INTO notes (id, tenant_id, body) VALUES ($1, $2, $3)`, [randomUUID(), tenantId, body]),
      );

    before(async () => {
      db = await openTestDatabase(variant, 'notes');
      assert.deepEqual(await db.migrate(dir), ['0001_notes.sql']);
      await insertNote(tenantA, 'a1');
      await insertNote(tenantA, 'a2');
      await insertNote(tenantB, 'b1');
    });
    after(() => db?.close());

    test('migrations are recorded and not applied twice', async () => {
      assert.deepEqual(await db.migrate(dir), []);
    });

    test('a migration edited after it was applied is refused', async () => {
      const edited = migrationsDir({ '0001_notes.sql': `${NOTES_MIGRATION}\n-- edited` });
      await assert.rejects(db.migrate(edited), MigrationError);
    });

    test("a platform module's migrations run before the service's own, under the module's name, in every schema", async () => {
      const modular = await openTestDatabase(variant, 'modular');
      try {
        const labels = { module: 'labels', dir: migrationsDir({ '0001_labels.sql': LABELS_MIGRATION }) };
        const own = migrationsDir({ '0001_notes.sql': NOTES_MIGRATION, '0002_label_colours.sql': 'ALTER TABLE labels ADD COLUMN colour text;' });
        assert.deepEqual(await modular.migrate(own, [labels]), ['labels/0001_labels.sql', '0001_notes.sql', '0002_label_colours.sql']);
        assert.deepEqual(await modular.migrate(own, [labels]), []);
        await modular.withDedicatedTenant(tenantA, (tx) => tx.query(`INSERT INTO labels (tenant_id, name, colour) VALUES ($1, 'urgent', 'red')`, [tenantA]));
      } finally {
        await modular.close();
      }
    });

    test('a recorded migration whose file is gone (retired) is left alone', async () => {
      const retiring = await openTestDatabase(variant, 'retiring');
      try {
        await retiring.migrate(migrationsDir({ '0001_notes.sql': NOTES_MIGRATION, '0002_retired.sql': 'CREATE TABLE retired (id int);' }));
        const later = migrationsDir({ '0001_notes.sql': NOTES_MIGRATION, '0003_after.sql': 'DROP TABLE retired;' });
        assert.deepEqual(await retiring.migrate(later), ['0003_after.sql']);
      } finally {
        await retiring.close();
      }
    });

    test('a failing migration leaves nothing behind', async () => {
      const failing = migrationsDir({
        '0001_notes.sql': NOTES_MIGRATION,
        '0002_half.sql': `CREATE TABLE half_done (id int);`,
        '0003_broken.sql': `THIS IS NOT SQL;`,
      });
      await assert.rejects(db.migrate(failing));
      const tables = await db.withTenant(tenantA, (tx) =>
        tx.query(`SELECT 1 FROM pg_tables WHERE tablename = 'half_done' AND schemaname = $1`, [db.schema]),
      );
      assert.equal(tables.length, 0);
    });

    test('a query with no tenant filter still sees only its tenant', async () => {
      const rows = await db.withTenant(tenantA, (tx) => tx.query<{ body: string }>(`SELECT body FROM notes ORDER BY body`));
      assert.deepEqual(rows.map((r) => r.body), ['a1', 'a2']);
    });

    test('writing a row for another tenant is refused by the policy', async () => {
      await assert.rejects(
        db.withTenant(tenantA, (tx) =>
          tx.query(`INSERT INTO notes (id, tenant_id, body) VALUES ($1, $2, 'x')`, [randomUUID(), tenantB]),
        ),
        /row-level security/,
      );
    });

    test('updates and deletes cannot reach another tenant', async () => {
      const touched = await db.withTenant(tenantA, (tx) => tx.query(`DELETE FROM notes WHERE tenant_id = $1 RETURNING id`, [tenantB]));
      assert.equal(touched.length, 0);
      const left = await db.withTenant(tenantB, (tx) => tx.query(`SELECT 1 FROM notes`));
      assert.equal(left.length, 1);
    });

    test('transactions run as the application role, which cannot switch back or turn off RLS', async () => {
      const [who] = await db.withTenant(tenantA, (tx) => tx.query<{ user: string }>(`SELECT current_user AS user`));
      assert.equal(who!.user, 'jarvis_app');
      await assert.rejects(db.withTenant(tenantA, (tx) => tx.query(`ALTER TABLE notes DISABLE ROW LEVEL SECURITY`)));
    });

    test("system_* tables are the owner's: the application role cannot read or write them", async () => {
      const [secret] = await db.withSystem((tx) => tx.query<{ value: string }>(`SELECT value FROM system_secrets`));
      assert.equal(secret!.value, 'do not leak');
      await assert.rejects(db.withTenant(tenantA, (tx) => tx.query(`SELECT * FROM system_secrets`)), /permission denied/);
      await assert.rejects(db.withoutTenant((tx) => tx.query(`DELETE FROM system_secrets`)), /permission denied/);
      await assert.rejects(db.withTenant(tenantA, (tx) => tx.query(`SELECT * FROM schema_migrations`)), /permission denied/);
    });

    test('without a tenant, no tenant rows are visible', async () => {
      const rows = await db.withoutTenant((tx) => tx.query(`SELECT 1 FROM notes`));
      assert.equal(rows.length, 0);
    });

    test('a failed transaction writes nothing', async () => {
      await assert.rejects(
        db.withTenant(tenantB, async (tx) => {
          await tx.query(`INSERT INTO notes (id, tenant_id, body) VALUES ($1, $2, 'kept?')`, [randomUUID(), tenantB]);
          await tx.query(`INSERT INTO notes (id, tenant_id, body) VALUES ($1, $2, '')`, [randomUUID(), tenantB]);
        }),
      );
      const rows = await db.withTenant(tenantB, (tx) => tx.query(`SELECT 1 FROM notes WHERE body = 'kept?'`));
      assert.equal(rows.length, 0);
    });

    test('a malformed tenant id is a BAD_USER_INPUT error, not a database error', async () => {
      await assert.rejects(
        db.withTenant('not-a-uuid', async () => 1),
        (error: { extensions?: { code?: string } }) => error.extensions?.code === 'BAD_USER_INPUT',
      );
    });

    test('concurrent transactions of different tenants do not see each other', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const tenantId = i % 2 ? tenantA : tenantB;
          return db.withTenant(tenantId, async (tx) => {
            const rows = await tx.query<{ tenant_id: string }>(`SELECT tenant_id FROM notes`);
            return rows.every((row) => row.tenant_id === tenantId) && rows.length > 0;
          });
        }),
      );
      assert.ok(results.every(Boolean));
    });

    test("a request's database confines a signed-in caller to its tenant, whatever tenant id code passes", async () => {
      const scoped = scopeToPrincipal(db, signedIn(tenantA));
      const own = await scoped.withTenant(tenantA, (tx) => tx.query(`SELECT 1 FROM notes`));
      assert.equal(own.length, 2);
      await assert.rejects(
        scoped.withTenant(tenantB, (tx) => tx.query(`SELECT 1 FROM notes`)),
        (error: { extensions?: { code?: string } }) => error.extensions?.code === 'FORBIDDEN',
      );
      const loader = tenantLoader(scoped, async (tx, ids) => new Map(ids.map((id) => [id, id])));
      const [mine, theirs] = await Promise.allSettled([
        loader.load({ tenantId: tenantA, id: tenantA }),
        loader.load({ tenantId: tenantB, id: tenantB }),
      ]);
      assert.deepEqual(mine, { status: 'fulfilled', value: tenantA }, 'one foreign key does not fail the batch');
      assert.equal(theirs.status, 'rejected');
    });

    test('an anonymous caller reaches no tenant at all', async () => {
      const anonymous = scopeToPrincipal(db, ANONYMOUS);
      for (const enter of [anonymous.withTenant, anonymous.withDedicatedTenant]) {
        await assert.rejects(
          enter(tenantA, (tx) => tx.query(`SELECT 1 FROM notes`)),
          (error: { extensions?: { code?: string } }) => error.extensions?.code === 'UNAUTHENTICATED',
        );
      }
    });

    test("a DEDICATED tenant's rows live in a schema of its own, migrated on first use, still under row-level security", async () => {
      const tenantC = randomUUID();
      const dedicated = scopeToPrincipal(db, signedIn(tenantC, 'DEDICATED'));
      await dedicated.withTenant(tenantC, (tx) =>
        tx.query(`INSERT INTO notes (id, tenant_id, body) VALUES ($1, $2, 'c1')`, [randomUUID(), tenantC]),
      );
      const [placement] = await db.withSystem((tx) =>
        tx.query<{ schema: string; notes: number }>(
          `SELECT table_schema AS schema, (SELECT count(*)::int FROM ${dedicatedSchemaName(db.schema, tenantC)}.notes) AS notes
           FROM information_schema.tables WHERE table_name = 'notes' AND table_schema = $1`,
          [dedicatedSchemaName(db.schema, tenantC)],
        ),
      );
      assert.deepEqual(placement, { schema: dedicatedSchemaName(db.schema, tenantC), notes: 1 });
      assert.equal((await db.withTenant(tenantC, (tx) => tx.query(`SELECT 1 FROM notes`))).length, 0, 'nothing in the shared schema');
      assert.deepEqual(await dedicated.withTenant(tenantC, (tx) => tx.query(`SELECT body FROM notes`)), [{ body: 'c1' }]);
      await assert.rejects(
        dedicated.withTenant(tenantC, (tx) =>
          tx.query(`INSERT INTO notes (id, tenant_id, body) VALUES ($1, $2, 'planted')`, [randomUUID(), tenantB]),
        ),
        /row-level security/,
      );
      const neighbour = scopeToPrincipal(db, signedIn(tenantB, 'DEDICATED'));
      for (const enter of [neighbour.withTenant, neighbour.withDedicatedTenant]) {
        await assert.rejects(
          enter(tenantC, (tx) => tx.query(`SELECT 1 FROM notes`)),
          (error: { extensions?: { code?: string } }) => error.extensions?.code === 'FORBIDDEN',
        );
      }
    });

    test('tenantLoader batches keys into one transaction per tenant and keeps them apart', async () => {
      let transactions = 0;
      const counting: Database = { ...db, withTenant: (id, work) => (transactions++, db.withTenant(id, work)) };
      const loader = tenantLoader(counting, async (tx, ids) => {
        const rows = await tx.query<{ id: string; tenant_id: string }>(`SELECT id, tenant_id FROM notes WHERE id = ANY($1::uuid[])`, [ids]);
        return new Map(rows.map((row) => [row.id, row.tenant_id]));
      });
      const all = await db.withTenant(tenantA, (tx) => tx.query<{ id: string }>(`SELECT id FROM notes`));
      const [bNote] = await db.withTenant(tenantB, (tx) => tx.query<{ id: string }>(`SELECT id FROM notes`));
      const loaded = await Promise.all([
        ...all.map((row) => loader.load({ tenantId: tenantA, id: row.id })),
        loader.load({ tenantId: tenantB, id: bNote!.id }),
        loader.load({ tenantId: tenantA, id: bNote!.id }), // B's row asked for under A: must not be found
        loader.load({ tenantId: tenantA, id: 'not-a-uuid' }),
      ]);
      assert.deepEqual(loaded, [tenantA, tenantA, tenantB, null, null]);
      assert.equal(transactions, 2);
    });
  });
}
