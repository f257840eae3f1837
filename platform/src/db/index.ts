import { join } from 'node:path';
import { badUserInput, forbidden, unauthenticated } from '../errors.ts';
import type { Principal, TenantIsolation } from '../contracts/principal.ts';
import { isUuid } from '../ids.ts';
import { applyMigrations, serviceMigrations, type Migration } from './migrate.ts';
import { isNewPgliteDir, pgliteDriver } from './pglite.ts';
import { postgresDriver } from './postgres.ts';
import type { Database, Driver, SchemaPreparation, Transaction } from './types.ts';
import { SpanKind, traced, tracingEnabled } from '../telemetry.ts';

export type { Database, Transaction, Row, SchemaPreparation } from './types.ts';
export { MigrationError, type ModuleMigrations } from './migrate.ts';

export interface DatabaseOptions {
  /** The service's name: its schema, and its PGlite directory under `dataDir`. */
  service: string;
  /** A PostgreSQL URL; without it the service gets an embedded PGlite database. */
  url?: string | undefined;
  /** Where PGlite keeps its files; `memory://` keeps them in memory. */
  dataDir: string;
  schemaPrefix?: string | undefined;
  appRole: string;
  poolSize: number;
}

export function schemaName(service: string, prefix?: string): string {
  return prefix ? `${prefix}_${service}` : service;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const schema = schemaName(options.service, options.schemaPrefix);
  // Both are spliced into SQL (identifiers cannot be bound as parameters).
  const longestDedicated = dedicatedSchemaName(schema, '00000000-0000-0000-0000-000000000000');
  for (const identifier of [schema, longestDedicated, options.appRole]) {
    if (!IDENTIFIER.test(identifier)) throw new Error(`"${identifier}" is not a plain lower-case SQL identifier`);
  }
  const driver = options.url
    ? postgresDriver(options.url, schema, options.poolSize)
    : await pgliteDriver(pgliteDir(options.dataDir, options.service), schema);
  return tenantDatabase(tracedDriver(driver, schema), schema, options.appRole);
}

/**
 * While tracing is on, each transaction within a traced operation is a span and each statement in it a child
 * span, with the SQL text (parameters are never recorded). Background loops' transactions make no spans.
 */
function tracedDriver(driver: Driver, schema: string): Driver {
  const attributes = { 'db.system.name': 'postgresql', 'db.namespace': schema, 'jarvis.db.engine': driver.kind };
  const statement = <T>(sql: string, run: () => Promise<T>) =>
    traced(`db ${sql.trimStart().split(/\s/, 1)[0]!.toUpperCase()}`, { kind: SpanKind.CLIENT, attributes: { ...attributes, 'db.query.text': sql }, requireParent: true }, run);
  return {
    ...driver,
    transaction(work, setup) {
      if (!tracingEnabled()) return driver.transaction(work, setup);
      return traced('db transaction', { kind: SpanKind.CLIENT, attributes, requireParent: true }, () =>
        driver.transaction(
          (tx) =>
            work({
              query: (sql, params) => statement(sql, () => tx.query(sql, params)),
              exec: (sql) => statement(sql, () => tx.exec(sql)),
            }),
          setup,
        ),
      );
    },
  };
}

/** Where an embedded (PGlite) database named `service` keeps its files: undefined for `memory://`. */
export function pgliteDir(dataDir: string, service: string): string | undefined {
  return dataDir === 'memory://' ? undefined : join(dataDir, service);
}

function tenantDatabase(driver: Driver, schema: string, appRole: string): Database {
  let migrations: Migration[] = [];
  // Dedicated schemas this process has brought up to date, migrated on first use after each start.
  const migrated = new Map<string, Promise<unknown>>();
  const preparations: SchemaPreparation[] = [];

  function migratedDedicatedSchema(tenantId: string): Promise<string> {
    const name = dedicatedSchemaName(schema, tenantId);
    let ready = migrated.get(name);
    if (!ready) {
      ready = driver.transaction(async (tx) => {
        await applyMigrations(tx, name, appRole, migrations);
        for (const prepare of preparations) await prepare(tx, name);
      });
      ready.catch(() => migrated.delete(name));
      migrated.set(name, ready);
    }
    return ready.then(() => name);
  }

  const database: Database = {
    kind: driver.kind,
    schema,
    withTenant(tenantId, work) {
      if (!isUuid(tenantId)) return Promise.reject(invalidTenantId(tenantId));
      return asAppRole(driver, appRole, tenantId, work);
    },
    async withDedicatedTenant(tenantId, work) {
      if (!isUuid(tenantId)) throw invalidTenantId(tenantId);
      return asAppRole(driver, appRole, tenantId, work, await migratedDedicatedSchema(tenantId));
    },
    withoutTenant: (work) => asAppRole(driver, appRole, '', work),
    withSystem: (work) => driver.transaction(work),
    async migrate(dir, modules = []) {
      const read = await serviceMigrations(dir, modules);
      const applied = await driver.transaction((tx) => applyMigrations(tx, schema, appRole, read));
      migrations = read;
      return applied;
    },
    async ping() {
      await driver.transaction((tx) => tx.query('SELECT 1'));
    },
    listen(channel, onPayload) {
      if (!IDENTIFIER.test(channel)) return Promise.reject(new Error(`"${channel}" is not a plain lower-case SQL identifier`));
      return driver.listen(channel, onPayload);
    },
    async prepareSchemas(prepare) {
      preparations.push(prepare);
      // Schemas migrated before now, or while it was being registered, are prepared here; preparing is idempotent.
      await Promise.allSettled(migrated.values());
      for (const name of await tenantSchemas(database)) await driver.transaction((tx) => prepare(tx, name));
    },
    close: () => driver.close(),
  };
  return database;
}

/**
 * The service's own schema and its DEDICATED tenants' schemas (`<schema>_t_<hex>`), each with an outbox (every migrated schema has
 * one).
 * The names come from the catalog, matched against the service's checked schema name: safe to splice.
 */
export async function tenantSchemas(db: Database): Promise<string[]> {
  const rows = await db.withSystem((tx) =>
    tx.query<{ schema: string }>(
      `SELECT schemaname AS schema FROM pg_tables
       WHERE tablename = 'outbox' AND (schemaname = $1 OR schemaname ~ $2) ORDER BY schemaname`,
      [db.schema, `^${db.schema}_t_[0-9a-f]{32}$`],
    ),
  );
  return rows.map((row) => row.schema);
}

const invalidTenantId = (tenantId: string) => badUserInput(`"${tenantId}" is not a valid tenant id`, 'tenantId');

/** The schema holding a DEDICATED tenant's share of a service's data: `<service schema>_t_<tenant id in hex>`. */
export function dedicatedSchemaName(schema: string, tenantId: string): string {
  return `${schema}_t_${tenantId.replaceAll('-', '').toLowerCase()}`;
}

/**
 * `appRole` passed the identifier check in openDatabase, `tenantId` is a UUID or empty and `searchPath` a
 * schema name built from both: all inline safely.
 */
function asAppRole<T>(driver: Driver, appRole: string, tenantId: string, work: (tx: Transaction) => Promise<T>, searchPath?: string) {
  const placement = searchPath ? `, set_config('search_path', '${searchPath}', true)` : '';
  return driver.transaction(
    work,
    `SELECT set_config('role', '${appRole}', true), set_config('app.tenant_id', '${tenantId}', true)${placement}`,
  );
}

/**
 * The database as one request may use it. A signed-in caller's transactions are confined to its own tenant
 * — even a resolver that passes the wrong tenant id cannot cross over (FORBIDDEN) — and, for a DEDICATED
 * tenant, run in that tenant's own schema. An anonymous caller reaches no tenant's data at all.
 * `dedicatedSchemas: false` is for the tenant directory (tenancy), which stays shared so sign-in can find it.
 */
export function scopeToPrincipal(db: Database, principal: Principal, { dedicatedSchemas = true } = {}): Database {
  if (principal.tenantId === null) {
    const refuse = () => Promise.reject(unauthenticated('sign in first'));
    return { ...db, withTenant: refuse, withDedicatedTenant: refuse };
  }
  const own = principal.tenantId;
  const enter = enterTenant(db, dedicatedSchemas ? principal.isolation : 'SHARED');
  const confined: Database['withTenant'] = (tenantId, work) =>
    tenantId === own ? enter(tenantId, work) : Promise.reject(forbidden('that belongs to another tenant'));
  return { ...db, withTenant: confined, withDedicatedTenant: confined };
}

/** How to open a transaction for a tenant with that isolation: in the shared schema or in its own. */
export function enterTenant(db: Database, isolation: TenantIsolation): Database['withTenant'] {
  return isolation === 'DEDICATED' ? db.withDedicatedTenant : db.withTenant;
}

/** PostgreSQL's SQLSTATE for a unique violation, from pg and PGlite alike. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string } | null;
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
export { isNewPgliteDir, pgliteTemplate } from './pglite.ts';

/** True when a service's embedded database does not exist yet and will be created from the template. */
export function needsNewEmbeddedDatabase(dataDir: string, service: string): boolean {
  return isNewPgliteDir(pgliteDir(dataDir, service));
}
