/**
 * Where the search-latency bench runs: a knowledge database, migrated, with the vector store the service would
 * open on it, sized for the bench's embedder. Embedded PGlite in a temporary directory, or PostgreSQL under
 * schemas of its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase, type Database } from '@jarvis/platform/db';
import { createLogger } from '@jarvis/platform/logger';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { LocalHashEmbedder } from '@jarvis/platform/text';
import { dropSchemas, uniqueSchemaPrefix } from '@jarvis/platform/testing';
import { openVectorStore, type OpenedVectorStore } from '../../subgraphs/knowledge/src/vectors/index.ts';

const MIGRATIONS = fileURLToPath(new URL('../../subgraphs/knowledge/migrations/', import.meta.url));

export const embedder = new LocalHashEmbedder();
export const log = createLogger('search-latency', 'silent');

export interface Target {
  label: string;
  db: Database;
  vectors: OpenedVectorStore;
  close(): Promise<void>;
}

async function openTarget(label: string, db: Database, close: () => Promise<void>): Promise<Target> {
  await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
  const vectors = await openVectorStore({ db });
  await vectors.ensureCollection(embedder.dimensions);
  return { label: `${label} (${vectors.kind} vector store)`, db, vectors, close };
}

export async function openPgliteTarget(): Promise<Target> {
  const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-search-latency-'));
  const db = await openDatabase({ service: 'knowledge', dataDir, appRole: 'jarvis_app', poolSize: 1 });
  return openTarget('PGlite', db, async () => {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
}

export async function openPostgresTarget(url: string): Promise<Target> {
  const prefix = uniqueSchemaPrefix();
  const db = await openDatabase({ service: 'knowledge', url, dataDir: 'memory://', schemaPrefix: prefix, appRole: 'jarvis_app', poolSize: 4 });
  return openTarget('PostgreSQL', db, async () => {
    await db.close();
    await dropSchemas(url, prefix);
  });
}
