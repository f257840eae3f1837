import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { lockDataDir } from './lock.ts';
import type { Driver } from './types.ts';

/** PGlite is one session per instance; `transaction` serialises callers, so session state never leaks. */
export async function pgliteDriver(dataDir: string | undefined, schema: string): Promise<Driver> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const unlock = dataDir ? lockDataDir(dataDir) : () => {};
  const db = await PGlite.create({ dataDir, extensions: { vector } }).catch((error) => {
    unlock();
    throw error;
  });
  await db.exec(`SET search_path TO ${schema}`);

  return {
    kind: 'pglite',
    transaction: (work) =>
      db.transaction((tx) =>
        work({
          query: async (sql, params) => (await tx.query(sql, params as unknown[])).rows as never[],
          exec: async (sql) => void (await tx.exec(sql)),
        }),
      ),
    close: async () => {
      await db.close();
      unlock();
    },
  };
}
