/**
 * Row-level security as an invariant of the schemas the real migrations build, shared and DEDICATED: every
 * table holding tenants' rows is ENABLE + FORCE with a policy, and every other table is out of the application
 * role's reach. Read from the catalog, so a new table that forgets either fails here, whoever wrote it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { agentsSubgraph } from '@jarvis/agents';
import { chatSubgraph } from '@jarvis/chat';
import { knowledgeSubgraph } from '@jarvis/knowledge';
import { dedicatedSchemaName, type Database, type ModuleMigrations } from '@jarvis/platform/db';
import { databaseVariants, openTestDatabase, type DatabaseVariant } from '@jarvis/platform/testing';
import { tenancySubgraph } from '@jarvis/tenancy';
import { usageSubgraph } from '@jarvis/usage';

const APP_ROLE = 'jarvis_app';

/** Tables whose tenant is the row itself, not a `tenant_id` column. */
const KEYED_BY_ID = new Set(['tenants']);

/** What an exception waives, and why; nothing else about the table is waived. */
interface Exception {
  forced: false;
  reason: string;
}

const EXCEPTIONS: Record<string, Exception> = {
  outbox: {
    forced: false,
    reason:
      'the relay reads and marks events as the owner, which FORCE would confine to no tenant; the application role ' +
      'may only INSERT its own tenant\'s rows (policy tenant_writes), and without a SELECT policy it reads none',
  },
};

interface TableSecurity {
  table: string;
  hasTenantId: boolean;
  enabled: boolean;
  forced: boolean;
  policies: number;
  appRoleReaches: boolean;
}

async function tableSecurity(db: Database, schema: string): Promise<TableSecurity[]> {
  return db.withSystem((tx) =>
    tx.query<TableSecurity>(
      `SELECT c.relname AS "table",
         EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS "hasTenantId",
         c.relrowsecurity AS enabled,
         c.relforcerowsecurity AS forced,
         (SELECT count(*) FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname)::int AS policies,
         (has_table_privilege($2, c.oid, 'SELECT') OR has_table_privilege($2, c.oid, 'INSERT')
           OR has_table_privilege($2, c.oid, 'UPDATE') OR has_table_privilege($2, c.oid, 'DELETE')) AS "appRoleReaches"
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
       ORDER BY c.relname`,
      [schema, APP_ROLE],
    ),
  );
}

/** What is wrong with each table of `schema`, as `<table>: <what>`; empty when the invariant holds. */
async function rowLevelSecurityViolations(db: Database, schema: string): Promise<string[]> {
  const tables = await tableSecurity(db, schema);
  const tenantOwned = (t: TableSecurity) => t.hasTenantId || KEYED_BY_ID.has(t.table);
  assert.ok(tables.some(tenantOwned), `schema ${schema} has no tenant-owned table: the check would prove nothing`);
  return tables.flatMap((t) => {
    if (!tenantOwned(t)) {
      return t.appRoleReaches ? [`${t.table}: holds no tenant key, yet ${APP_ROLE} may use it`] : [];
    }
    const exception = EXCEPTIONS[t.table];
    return [
      ...(t.enabled ? [] : [`${t.table}: row-level security not enabled`]),
      ...(t.forced || exception?.forced === false ? [] : [`${t.table}: row-level security not forced`]),
      ...(t.policies > 0 ? [] : [`${t.table}: no policy`]),
    ];
  });
}

/** Tenancy's directory stays shared (sign-in must find a tenant, `tenantDirectory`); the others keep DEDICATED tenants apart. */
const SUBGRAPHS = [tenancySubgraph, knowledgeSubgraph, chatSubgraph, usageSubgraph, agentsSubgraph];

interface Migrations {
  dir: string;
  modules?: readonly ModuleMigrations[] | undefined;
}

async function withMigratedDatabase<T>(variant: DatabaseVariant, service: string, migrations: Migrations, work: (db: Database) => Promise<T>): Promise<T> {
  const db = await openTestDatabase(variant, service);
  try {
    await db.migrate(migrations.dir, migrations.modules);
    return await work(db);
  } finally {
    await db.close();
  }
}

/** A migration directory of one throw-away migration: tables that forget row-level security in every way. */
function forgetfulMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), 'forgetful-migrations-'));
  writeFileSync(
    join(dir, '0001_forgetful.sql'),
    `CREATE TABLE notes (id uuid PRIMARY KEY, tenant_id uuid NOT NULL);
     CREATE TABLE drafts (id uuid PRIMARY KEY, tenant_id uuid NOT NULL);
     ALTER TABLE drafts ENABLE ROW LEVEL SECURITY;
     CREATE POLICY tenant_isolation ON drafts USING (tenant_id = current_tenant_id());
     CREATE TABLE comments (id uuid PRIMARY KEY, tenant_id uuid NOT NULL);
     ALTER TABLE comments ENABLE ROW LEVEL SECURITY;
     ALTER TABLE comments FORCE ROW LEVEL SECURITY;
     CREATE TABLE settings (name text PRIMARY KEY, value text);
     CREATE TABLE system_secrets (name text PRIMARY KEY, value text);
     CREATE TABLE audited (id uuid PRIMARY KEY, tenant_id uuid NOT NULL);
     ALTER TABLE audited ENABLE ROW LEVEL SECURITY;
     ALTER TABLE audited FORCE ROW LEVEL SECURITY;
     CREATE POLICY tenant_isolation ON audited USING (tenant_id = current_tenant_id());`,
  );
  return dir;
}

for (const variant of databaseVariants()) {
  describe(`row-level security of every migrated schema, on ${variant.name}`, { skip: variant.skip }, () => {
    for (const { name, migrations, moduleMigrations, tenantDirectory } of SUBGRAPHS) {
      test(`${name}: every tenant-owned table is ENABLE + FORCE with a policy, every other one out of reach`, () =>
        withMigratedDatabase(variant, name, { dir: fileURLToPath(migrations), modules: moduleMigrations }, async (db) => {
          assert.deepEqual(await rowLevelSecurityViolations(db, db.schema), []);
          if (tenantDirectory) return;
          const tenantId = randomUUID();
          await db.withDedicatedTenant(tenantId, async () => {});
          assert.deepEqual(await rowLevelSecurityViolations(db, dedicatedSchemaName(db.schema, tenantId)), []);
        }));
    }

    test('the check reports each table a new migration leaves unprotected, and only those', () =>
      withMigratedDatabase(variant, 'scratch', { dir: forgetfulMigrations() }, async (db) => {
        assert.deepEqual(await rowLevelSecurityViolations(db, db.schema), [
          'comments: no policy',
          'drafts: row-level security not forced',
          'notes: row-level security not enabled',
          'notes: row-level security not forced',
          'notes: no policy',
          'settings: holds no tenant key, yet jarvis_app may use it',
        ]);
      }));
  });
}
