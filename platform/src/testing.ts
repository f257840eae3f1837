/** Helpers for tests: database variants, throw-away schemas, a quiet configuration. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from './config.ts';
import { openDatabase, type Database } from './db/index.ts';

export interface DatabaseVariant {
  name: 'pglite' | 'postgres';
  url: string | undefined;
  /** A reason to skip, shown in the test report, when the real service is not configured. */
  skip: string | false;
}

/** Embedded PGlite always; real PostgreSQL too when DATABASE_URL is set (CI sets it). */
export function databaseVariants(): DatabaseVariant[] {
  const url = process.env.DATABASE_URL || undefined;
  return [
    { name: 'pglite', url: undefined, skip: false },
    { name: 'postgres', url, skip: url ? false : 'DATABASE_URL is not set' },
  ];
}

/** A schema prefix no other test run uses, so runs against one PostgreSQL never see each other's data. */
export function uniqueSchemaPrefix(): string {
  return `t_${randomBytes(5).toString('hex')}`;
}

export async function dropSchemas(url: string, prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`,
      [`${prefix}\\_%`],
    );
    for (const { nspname } of rows) await client.query(`DROP SCHEMA "${nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Configuration for an in-process test stack: in-memory PGlite or a private schema prefix, quiet logs. */
export function testConfig(variant: DatabaseVariant, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: 'memory://',
    SEED_DEMO: 'false',
    INTERNAL_AUTH_SECRET: randomBytes(32).toString('base64url'),
    // Test files run two at a time against one PostgreSQL: keep each stack's connections few.
    ...(variant.url ? { DATABASE_URL: variant.url, DATABASE_SCHEMA_PREFIX: uniqueSchemaPrefix(), DATABASE_POOL_SIZE: '3' } : {}),
    ...overrides,
  });
}

/** A TCP port that was free a moment ago, for child processes that need a fixed port. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A service's database for one test suite: in-memory PGlite, or a private schema in PostgreSQL that
 * `close` drops again.
 */
export async function openTestDatabase(variant: DatabaseVariant, service: string): Promise<Database & { close(): Promise<void> }> {
  const prefix = uniqueSchemaPrefix();
  const db = await openDatabase({
    service,
    url: variant.url,
    dataDir: 'memory://',
    schemaPrefix: variant.url ? prefix : undefined,
    appRole: 'jarvis_app',
    poolSize: 2,
  });
  return {
    ...db,
    async close() {
      await db.close();
      if (variant.url) await dropSchemas(variant.url, prefix);
    },
  };
}
