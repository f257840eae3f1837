/**
 * The vector stores the knowledge tests run against: pgvector and the exact store, each on PGlite and on the
 * PostgreSQL at DATABASE_URL; Qdrant, through a local server speaking its REST protocol and at QDRANT_URL. Each
 * variant says whether it can run here and whether it searches exactly; a pgvector table's shape can be read.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { QdrantClient } from '@qdrant/js-client-rest';
import type { Database } from '@jarvis/platform/db';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { databaseVariants, openTestDatabase, type DatabaseVariant } from '@jarvis/platform/testing';
import { openVectorStore, type VectorStore } from '../src/vectors/index.ts';
import { openExactStore } from '../src/vectors/exact.ts';
import { startFakeQdrant } from './fake-qdrant.ts';

export const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));

export interface OpenedStore {
  store: VectorStore;
  /** The database under a pgvector store. */
  db?: Database;
  close(): Promise<void>;
}

interface StoreVariant {
  name: string;
  skip: string | false;
  /** Compares the query with every stored vector, so it must find the true nearest chunks every time. */
  exact: boolean;
  open(): Promise<OpenedStore>;
}

async function openPgvector(variant: DatabaseVariant): Promise<OpenedStore> {
  const db = await openTestDatabase(variant, 'knowledge');
  await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
  const store = await openVectorStore({ db });
  return { store, db, close: () => store.close().then(() => db.close()) };
}

async function openExact(variant: DatabaseVariant): Promise<OpenedStore> {
  const db = await openTestDatabase(variant, 'knowledge');
  await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
  const store = openExactStore(db);
  return { store, close: () => store.close().then(() => db.close()) };
}

async function openFakeQdrant(): Promise<OpenedStore> {
  const server = await startFakeQdrant();
  const store = await openVectorStore({ db: unusedDatabase, qdrantUrl: server.url, collection: 'chunks' });
  return { store, close: () => store.close().then(() => server.close()) };
}

async function openRealQdrant(url: string): Promise<OpenedStore> {
  const collection = `jarvis_test_${randomBytes(5).toString('hex')}`;
  const store = await openVectorStore({ db: unusedDatabase, qdrantUrl: url, collection });
  const dropCollection = () => new QdrantClient({ url, checkCompatibility: false }).deleteCollection(collection);
  return { store, close: () => store.close().then(dropCollection).then(() => undefined) };
}

/** A Qdrant store never touches the database; any use of this one fails the test. */
const unusedDatabase = new Proxy({} as Database, {
  get: (_target, property) => {
    throw new Error(`the Qdrant store used the database (${String(property)})`);
  },
});

async function hasVectorExtension(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'vector'`);
    return rows.length > 0;
  } finally {
    await client.end();
  }
}

export const pglite = databaseVariants().find((variant) => variant.name === 'pglite')!;
export const postgres = databaseVariants().find((variant) => variant.name === 'postgres')!;
export const postgresHasPgvector = postgres.url ? await hasVectorExtension(postgres.url) : false;
const NO_PGVECTOR = 'the PostgreSQL at DATABASE_URL has no pgvector (pg_available_extensions lists no "vector")';
const qdrantUrl = process.env.QDRANT_URL || undefined;

export const storeVariants: StoreVariant[] = [
  { name: 'pgvector on PGlite', skip: false, exact: false, open: () => openPgvector(pglite) },
  {
    name: 'pgvector on PostgreSQL',
    skip: postgres.skip || (postgresHasPgvector ? false : NO_PGVECTOR),
    exact: false,
    open: () => openPgvector(postgres),
  },
  { name: 'exact on PGlite', skip: false, exact: true, open: () => openExact(pglite) },
  { name: 'exact on PostgreSQL', skip: postgres.skip, exact: true, open: () => openExact(postgres) },
  { name: 'Qdrant (local server speaking its REST protocol)', skip: false, exact: true, open: openFakeQdrant },
  { name: 'Qdrant at QDRANT_URL', skip: qdrantUrl ? false : 'QDRANT_URL is not set', exact: false, open: () => openRealQdrant(qdrantUrl!) },
];

/** The dimension count of a schema's chunk_vectors.embedding (-1: none yet) and the definition of its HNSW index. */
export async function vectorTableShape(db: Database, schema: string): Promise<{ dimensions: number; index: string | null }> {
  return db.withSystem(async (tx) => {
    const [row] = await tx.query<{ dimensions: number; index: string | null }>(
      `SELECT (SELECT atttypmod FROM pg_attribute WHERE attrelid = $2::regclass AND attname = 'embedding') AS dimensions,
         (SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'chunk_vectors' AND indexname = 'chunk_vectors_embedding_idx') AS index`,
      [schema, `${schema}.chunk_vectors`],
    );
    return row!;
  });
}

export const HNSW_COSINE = /USING hnsw \(embedding (\S+\.)?vector_cosine_ops\)/;
