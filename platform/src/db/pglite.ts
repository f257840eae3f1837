import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { lockDataDir } from './lock.ts';
import type { Driver } from './types.ts';

/** PGlite is one session per instance; `transaction` serialises callers, so session state never leaks. */
export async function pgliteDriver(dataDir: string | undefined, schema: string): Promise<Driver> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const unlock = dataDir ? lockDataDir(dataDir) : () => {};
  const db = await PGlite.create({
    dataDir,
    extensions: { vector },
    loadDataDir: isNewPgliteDir(dataDir) ? await pgliteTemplate() : undefined,
  }).catch((error) => {
    unlock();
    throw error;
  });
  await db.exec(`SET search_path TO ${schema}`);

  return {
    kind: 'pglite',
    transaction: (work, setup) =>
      db.transaction(async (tx) => {
        if (setup) await tx.exec(setup);
        return work({
          query: async (sql, params) => (await tx.query(sql, params as unknown[])).rows as never[],
          exec: async (sql) => void (await tx.exec(sql)),
        });
      }),
    listen: async (channel, onPayload) => {
      const stop = await db.listen(channel, onPayload);
      return () => stop();
    },
    close: async () => {
      await db.close();
      unlock();
    },
  };
}

/** In memory, or a directory PGlite has not initialised yet. */
export function isNewPgliteDir(dataDir: string | undefined): boolean {
  return !dataDir || !existsSync(join(dataDir, 'PG_VERSION'));
}

let template: Promise<Blob> | undefined;

/**
 * A freshly initialised PGlite data directory as a tar. Creating a database from it takes a fraction of
 * PGlite's own initdb (about 0.5 s against 3 s here), which is most of a cold start and of every test stack.
 * Cached per PGlite version in the OS temp directory, shared by processes; written atomically.
 */
export function pgliteTemplate(): Promise<Blob> {
  template ??= loadOrCreateTemplate();
  return template;
}

async function loadOrCreateTemplate(): Promise<Blob> {
  const path = join(tmpdir(), `jarvis-pglite-${pgliteVersion()}-template.tar`);
  const cached = await readFile(path).catch(() => undefined);
  if (cached) return new Blob([cached]);
  const db = await PGlite.create();
  const dump = await db.dumpDataDir('none');
  await db.close();
  const partial = `${path}.${process.pid}.partial`;
  await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
  await rename(partial, path);
  return dump;
}

function pgliteVersion(): string {
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  const packageJson = join(entry.slice(0, entry.lastIndexOf('/dist/')), 'package.json');
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
}
