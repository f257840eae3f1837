import { join } from 'node:path';
import { badUserInput, forbidden } from '../errors.ts';
import type { Principal } from '../principal.ts';
import { applyMigrations, readMigrations } from './migrate.ts';
import { isNewPgliteDir, pgliteDriver } from './pglite.ts';
import { postgresDriver } from './postgres.ts';
import type { Database, Driver, Transaction } from './types.ts';

export type { Database, Transaction, Row } from './types.ts';
export { MigrationError } from './migrate.ts';

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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function schemaName(service: string, prefix?: string): string {
  return prefix ? `${prefix}_${service}` : service;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const schema = schemaName(options.service, options.schemaPrefix);
  // Both are spliced into SQL (identifiers cannot be bound as parameters).
  for (const identifier of [schema, options.appRole]) {
    if (!IDENTIFIER.test(identifier)) throw new Error(`"${identifier}" is not a plain lower-case SQL identifier`);
  }
  const driver = options.url
    ? postgresDriver(options.url, schema, options.poolSize)
    : await pgliteDriver(pgliteDir(options.dataDir, options.service), schema);
  return tenantDatabase(driver, schema, options.appRole);
}

function pgliteDir(dataDir: string, service: string): string | undefined {
  return dataDir === 'memory://' ? undefined : join(dataDir, service);
}

function tenantDatabase(driver: Driver, schema: string, appRole: string): Database {
  return {
    kind: driver.kind,
    schema,
    withTenant(tenantId, work) {
      if (!isUuid(tenantId)) return Promise.reject(badUserInput(`"${tenantId}" is not a valid tenant id`, 'tenantId'));
      return asAppRole(driver, appRole, tenantId, work);
    },
    withoutTenant: (work) => asAppRole(driver, appRole, '', work),
    withSystem: (work) => driver.transaction(work),
    async migrate(dir) {
      const migrations = await readMigrations(dir);
      return driver.transaction((tx) => applyMigrations(tx, schema, appRole, migrations));
    },
    async ping() {
      await driver.transaction((tx) => tx.query('SELECT 1'));
    },
    close: () => driver.close(),
  };
}

/** `appRole` passed the identifier check in openDatabase and `tenantId` is a UUID or empty: both inline safely. */
function asAppRole<T>(driver: Driver, appRole: string, tenantId: string, work: (tx: Transaction) => Promise<T>) {
  return driver.transaction(work, `SELECT set_config('role', '${appRole}', true), set_config('app.tenant_id', '${tenantId}', true)`);
}

/**
 * The database as one request may use it: an authenticated caller's transactions are confined to its own
 * tenant, so even a resolver that passes the wrong tenant id cannot cross over (FORBIDDEN). Anonymous callers
 * are scoped by the tenant they name until sign-in is required.
 */
export function scopeToPrincipal(db: Database, principal: Principal): Database {
  if (principal.tenantId === null) return db;
  const own = principal.tenantId;
  return {
    ...db,
    withTenant: (tenantId, work) =>
      tenantId === own ? db.withTenant(tenantId, work) : Promise.reject(forbidden('that belongs to another tenant')),
  };
}

/** PostgreSQL's SQLSTATE for a unique violation, from pg and PGlite alike. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string } | null;
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
export { pgliteTemplate } from './pglite.ts';

/** True when a service's embedded database does not exist yet and will be created from the template. */
export function needsNewEmbeddedDatabase(dataDir: string, service: string): boolean {
  return isNewPgliteDir(pgliteDir(dataDir, service));
}
