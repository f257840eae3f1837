import type { ModuleMigrations } from './migrate.ts';

export type Row = Record<string, unknown>;

/** See Database.prepareSchemas. */
export type SchemaPreparation = (tx: Transaction, schema: string) => Promise<void>;

/** One open transaction. `query` takes parameters; `exec` runs a script of several statements. */
export interface Transaction {
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

/** What each engine provides: transactions as the connecting (owner) role, and lifecycle. */
export interface Driver {
  readonly kind: 'postgres' | 'pglite';
  /**
   * Runs `work` in a transaction. `setup`, trusted SQL without parameters, runs right after BEGIN in the
   * same round trip (simple protocol), which saves a round trip on every tenant-scoped transaction.
   */
  transaction<T>(work: (tx: Transaction) => Promise<T>, setup?: string): Promise<T>;
  /** Calls `onPayload` with each NOTIFY on `channel` (a plain identifier) until the returned stop is called. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface Database {
  readonly kind: Driver['kind'];
  /** The PostgreSQL schema this service owns. */
  readonly schema: string;
  /**
   * Runs `work` in a transaction as the non-superuser application role with `app.tenant_id` set, so
   * row-level security confines every statement to that tenant. Rolled back if `work` throws.
   */
  withTenant<T>(tenantId: string, work: (tx: Transaction) => Promise<T>): Promise<T>;
  /**
   * The same for a DEDICATED tenant, in that tenant's own schema (created and migrated on first use) instead
   * of the shared one; row-level security still applies there.
   */
  withDedicatedTenant<T>(tenantId: string, work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** The same, with no tenant set: policies hide every tenant's rows. For lookups before a tenant is known. */
  withoutTenant<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** A transaction as the schema's owner, for the service's own `system_*` tables; never for tenant data. */
  withSystem<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  /**
   * Applies pending migrations in one transaction: those of the platform modules whose tables the service keeps
   * (`modules`), then its own from `dir`. Returns the names applied.
   */
  migrate(dir: string, modules?: readonly ModuleMigrations[]): Promise<string[]>;
  /**
   * Work every schema of the service needs after its migrations, which they cannot do themselves (shaping a
   * table to a size known only at run time, say): run now, as the owner, in the service's schema and each
   * DEDICATED tenant's, and from then on in the transaction that migrates a new tenant schema, before its
   * first use. `prepare` must be idempotent; register it once.
   */
  prepareSchemas(prepare: SchemaPreparation): Promise<void>;
  ping(): Promise<void>;
  /**
   * Calls `onPayload` with each notification on `channel` (`pg_notify`, sent when the notifying transaction
   * commits, from any process on the same database) until the returned stop is called. Notifications sent
   * while a PostgreSQL listener reconnects are lost: use them to wake readers, not as the record.
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
