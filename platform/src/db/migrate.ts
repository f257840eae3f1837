import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Transaction } from './types.ts';

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

/**
 * The migrations a platform module ships for a table it keeps in the schema of each service that uses it (the
 * quota-overrides replica, say). They run before the service's own, which may build on them; each is recorded
 * as `<module>/<file>`, apart from the service's own names.
 */
export interface ModuleMigrations {
  module: string;
  dir: string;
}

/** The `*.sql` files of `dir` in name order; a module's are named after it. */
export async function readMigrations(dir: string, module?: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
  return Promise.all(
    files.map(async (file) => {
      const sql = await readFile(join(dir, file), 'utf8');
      return { name: module ? `${module}/${file}` : file, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/** A service's migrations in the order they apply: its modules', then its own from `dir`. */
export async function serviceMigrations(dir: string, modules: readonly ModuleMigrations[]): Promise<Migration[]> {
  const read = await Promise.all([...modules.map((m) => readMigrations(m.dir, m.module)), readMigrations(dir)]);
  return read.flat();
}

/**
 * Everything a service schema needs before its own migrations: the application role (cluster-wide,
 * created once), the schema, the ledger of applied migrations, `current_tenant_id()` for policies, and the
 * event outbox.
 */
function bootstrapSql(schema: string, appRole: string): string {
  return `
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${appRole}') THEN
        CREATE ROLE ${appRole} NOLOGIN;
      END IF;
    END $$;
    CREATE SCHEMA IF NOT EXISTS ${schema};
    GRANT USAGE ON SCHEMA ${schema} TO ${appRole};
    CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
      name text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE OR REPLACE FUNCTION ${schema}.current_tenant_id() RETURNS uuid
      LANGUAGE sql STABLE AS $fn$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $fn$;
    GRANT EXECUTE ON FUNCTION ${schema}.current_tenant_id() TO ${appRole};
    ${outboxSql(schema)}
  `;
}

/**
 * The transactional outbox (platform/src/outbox.ts). Producers write to it from tenant transactions, as the
 * application role, so it cannot be an owner-only `system_*` table; instead that role may only INSERT
 * (see grantsSql), and only rows of the transaction's own tenant (the policy), so a tenant can neither read
 * nor alter nor forge another tenant's events. Without a SELECT policy RLS hides every row from it as well.
 * The relay reads and marks rows as the owner, whom RLS does not apply to (it is enabled, not forced).
 */
function outboxSql(schema: string): string {
  return `
    CREATE TABLE IF NOT EXISTS ${schema}.outbox (
      id uuid PRIMARY KEY,
      tenant_id uuid NOT NULL,
      topic text NOT NULL,
      event jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      published_at timestamptz
    );
    CREATE INDEX IF NOT EXISTS outbox_unpublished ON ${schema}.outbox (created_at) WHERE published_at IS NULL;
    ALTER TABLE ${schema}.outbox ENABLE ROW LEVEL SECURITY;
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_policies WHERE schemaname = '${schema}' AND tablename = 'outbox') THEN
        CREATE POLICY tenant_writes ON ${schema}.outbox FOR INSERT
          WITH CHECK (tenant_id = ${schema}.current_tenant_id());
      END IF;
    END $$;
  `;
}

/**
 * The application role may use every table but the service's own: `schema_migrations` and tables named
 * `system_*` (signing keys and the like), which only `withSystem` — the owner — reaches; and it may only
 * add to the outbox.
 */
function grantsSql(schema: string, appRole: string): string {
  return `
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${appRole};
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${appRole};
    DO $$ DECLARE owner_only record; BEGIN
      FOR owner_only IN SELECT tablename FROM pg_tables
        WHERE schemaname = '${schema}' AND (tablename = 'schema_migrations' OR tablename LIKE 'system\_%')
      LOOP
        EXECUTE format('REVOKE ALL ON %I.%I FROM ${appRole}', '${schema}', owner_only.tablename);
      END LOOP;
    END $$;
    REVOKE ALL ON ${schema}.outbox FROM ${appRole};
    GRANT INSERT ON ${schema}.outbox TO ${appRole};
  `;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/**
 * Applies pending migrations in one transaction, serialised across processes by an advisory lock. A recorded
 * migration whose file is gone is left alone on purpose: a retired migration (one whose table moved to a
 * platform module, say) stays in the ledger as history, and a database that ran it is still accepted.
 */
export async function applyMigrations(
  tx: Transaction,
  schema: string,
  appRole: string,
  migrations: Migration[],
): Promise<string[]> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext('jarvis:migrate'))`);
  await tx.exec(bootstrapSql(schema, appRole));
  await tx.exec(`SET LOCAL search_path TO ${schema}`);

  const rows = await tx.query<{ name: string; checksum: string }>(`SELECT name, checksum FROM schema_migrations`);
  const applied = new Map(rows.map((row) => [row.name, row.checksum]));
  const pending: string[] = [];
  for (const migration of migrations) {
    const checksum = applied.get(migration.name);
    if (checksum === undefined) {
      await tx.exec(migration.sql);
      await tx.query(`INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)`, [
        migration.name,
        migration.checksum,
      ]);
      pending.push(migration.name);
    } else if (checksum !== migration.checksum) {
      throw new MigrationError(
        `migration ${schema}/${migration.name} was changed after it was applied; add a new migration instead`,
      );
    }
  }
  await tx.exec(grantsSql(schema, appRole));
  return pending;
}
