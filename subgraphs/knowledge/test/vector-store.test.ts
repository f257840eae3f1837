import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { QdrantClient } from '@qdrant/js-client-rest';
import { dedicatedSchemaName, type Database } from '@jarvis/platform';
import { databaseVariants, openTestDatabase, type DatabaseVariant } from '@jarvis/platform/testing';
import {
  openVectorStore,
  type ChunkVector,
  type VectorQuery,
  type VectorStore,
} from '../src/vectors/index.ts';
import { openExactStore } from '../src/vectors/exact.ts';
import { searchSql } from '../src/vectors/pgvector.ts';
import { startFakeQdrant } from './fake-qdrant.ts';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));

interface OpenedStore {
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
  await db.migrate(MIGRATIONS);
  const store = await openVectorStore({ db });
  return { store, db, close: () => store.close().then(() => db.close()) };
}

async function openExact(variant: DatabaseVariant): Promise<OpenedStore> {
  const db = await openTestDatabase(variant, 'knowledge');
  await db.migrate(MIGRATIONS);
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

const pglite = databaseVariants().find((variant) => variant.name === 'pglite')!;
const postgres = databaseVariants().find((variant) => variant.name === 'postgres')!;
const postgresHasPgvector = postgres.url ? await hasVectorExtension(postgres.url) : false;
const NO_PGVECTOR = 'the PostgreSQL at DATABASE_URL has no pgvector (pg_available_extensions lists no "vector")';
const qdrantUrl = process.env.QDRANT_URL || undefined;

const storeVariants: StoreVariant[] = [
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

/** What an approximate (HNSW) index must find of the true top-k; an exact search must find all of it. */
const ANN_RECALL = 0.95;
const USES_HNSW = /Index Scan using chunk_vectors_embedding_idx/;

interface Place {
  tenantId: string;
  knowledgeBaseId: string;
  documentId: string;
}

const newPlace = (tenantId: string = randomUUID(), knowledgeBaseId: string = randomUUID()): Place => ({
  tenantId,
  knowledgeBaseId,
  documentId: randomUUID(),
});

const chunkAt = (place: Place, vector: number[], readers?: string[]): ChunkVector => ({
  id: randomUUID(),
  ...place,
  vector: Float32Array.from(vector),
  ...(readers ? { readers } : {}),
});

/** The dimension count of a schema's chunk_vectors.embedding (-1: none yet) and the definition of its HNSW index. */
async function vectorTableShape(db: Database, schema: string): Promise<{ dimensions: number; index: string | null }> {
  return db.withSystem(async (tx) => {
    const [row] = await tx.query<{ dimensions: number; index: string | null }>(
      `SELECT (SELECT atttypmod FROM pg_attribute WHERE attrelid = $2::regclass AND attname = 'embedding') AS dimensions,
         (SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'chunk_vectors' AND indexname = 'chunk_vectors_embedding_idx') AS index`,
      [schema, `${schema}.chunk_vectors`],
    );
    return row!;
  });
}

const HNSW_COSINE = /USING hnsw \(embedding (\S+\.)?vector_cosine_ops\)/;

/** The plan of the pgvector store's search, as the tenant's transaction (shared or dedicated schema) would run it. */
async function searchPlan(db: Database, tenantId: string, isolation: 'SHARED' | 'DEDICATED', params: unknown[]): Promise<string> {
  const enter = isolation === 'DEDICATED' ? db.withDedicatedTenant : db.withTenant;
  return enter(tenantId, async (tx) => {
    const [extension] = await tx.query<{ schema: string }>(`SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'vector'`);
    const rows = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${searchSql(extension!.schema)}`, params);
    return rows.map((row) => row['QUERY PLAN']).join('\n');
  });
}

for (const variant of storeVariants) {
  describe(`vector store contract: ${variant.name}`, { skip: variant.skip }, () => {
    let opened: OpenedStore;
    let store: VectorStore;

    before(async () => {
      opened = await variant.open();
      store = opened.store;
      await store.ensureCollection(4);
    });
    after(() => opened?.close());

    const search = (place: Place, vector: number[], options: Partial<VectorQuery> = {}) =>
      store.search({
        tenantId: place.tenantId,
        knowledgeBaseIds: [place.knowledgeBaseId],
        vector: Float32Array.from(vector),
        topK: 10,
        ...options,
      });
    const idsOf = (hits: { id: string }[]) => hits.map((hit) => hit.id);

    test('finds the nearest chunks first, scored by cosine similarity', async () => {
      const place = newPlace();
      const [same, near, farther, orthogonal, opposite] = [
        chunkAt(place, [3, 0, 0, 0]),
        chunkAt(place, [1, 1, 0, 0]),
        chunkAt(place, [1, 1, 1, 1]),
        chunkAt(place, [0, 1, 0, 0]),
        chunkAt(place, [-1, 0, 0, 0]),
      ];
      await store.upsert([orthogonal!, opposite!, same!, farther!, near!]);

      const hits = await search(place, [1, 0, 0, 0]);
      assert.deepEqual(idsOf(hits), idsOf([same!, near!, farther!, orthogonal!, opposite!]));
      const expected = [1, Math.SQRT1_2, 0.5, 0, -1];
      hits.forEach((hit, i) => assert.ok(Math.abs(hit.score - expected[i]!) < 1e-5, `score ${hit.score} ≠ ${expected[i]}`));
      assert.deepEqual(hits[0], { id: same!.id, documentId: place.documentId, knowledgeBaseId: place.knowledgeBaseId, score: hits[0]!.score });
    });

    test('returns at most topK hits, the closest ones', async () => {
      const place = newPlace();
      const chunks = [[1, 0, 0, 0], [1, 0.1, 0, 0], [1, 0.5, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0]].map((v) => chunkAt(place, v));
      await store.upsert(chunks);
      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0], { topK: 2 })), idsOf(chunks.slice(0, 2)));
      await assert.rejects(search(place, [1, 0, 0, 0], { topK: 0 }), /topK/);
    });

    test('searches only the knowledge bases it is given', async () => {
      const first = newPlace();
      const second = newPlace(first.tenantId);
      const inFirst = chunkAt(first, [1, 0, 0, 0]);
      const inSecond = chunkAt(second, [1, 0.1, 0, 0]);
      await store.upsert([inFirst, inSecond]);

      assert.deepEqual(idsOf(await search(first, [1, 0, 0, 0])), [inFirst.id]);
      assert.deepEqual(idsOf(await search(second, [1, 0, 0, 0])), [inSecond.id]);
      const both = await search(first, [1, 0, 0, 0], { knowledgeBaseIds: [first.knowledgeBaseId, second.knowledgeBaseId] });
      assert.deepEqual(idsOf(both), [inFirst.id, inSecond.id]);
      assert.deepEqual(await search(first, [1, 0, 0, 0], { knowledgeBaseIds: [] }), []);
    });

    test("a tenant never finds another tenant's chunks, even by naming their knowledge base", async () => {
      const ofA = newPlace();
      const chunkOfA = chunkAt(ofA, [1, 0, 0, 0]);
      const ofB = newPlace();
      const chunkOfB = chunkAt(ofB, [1, 0, 0, 0]);
      await store.upsert([chunkOfA, chunkOfB]);

      const asB = await search(ofB, [1, 0, 0, 0], { knowledgeBaseIds: [ofA.knowledgeBaseId, ofB.knowledgeBaseId] });
      assert.deepEqual(idsOf(asB), [chunkOfB.id]);
      assert.deepEqual(await search({ ...ofA, tenantId: ofB.tenantId }, [1, 0, 0, 0]), []);
    });

    test("a tenant's deletes never reach another tenant's chunks", async () => {
      const ofA = newPlace();
      const chunkOfA = chunkAt(ofA, [0, 0, 1, 0]);
      await store.upsert([chunkOfA]);
      const tenantB = randomUUID();

      await store.deleteDocument(tenantB, ofA.documentId);
      await store.deleteKnowledgeBase(tenantB, ofA.knowledgeBaseId);
      assert.deepEqual(idsOf(await search(ofA, [0, 0, 1, 0])), [chunkOfA.id]);
    });

    test('restricted chunks are found only by their readers; unrestricted ones by everyone', async () => {
      const place = newPlace();
      const open = chunkAt(place, [1, 0, 0, 0]);
      const restricted = chunkAt(place, [1, 0.1, 0, 0], ['user-1', 'group-hr']);
      await store.upsert([open, restricted]);

      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0], { reader: ['user-2', 'group-eng'] })), [open.id]);
      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0], { reader: ['user-2', 'group-hr'] })), [open.id, restricted.id]);
      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0], { reader: ['user-1'] })), [open.id, restricted.id]);
      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0])), [open.id], 'without principals only unrestricted chunks');
    });

    test("a knowledge base the caller manages shows its restricted chunks; the others' stay restricted", async () => {
      const managed = newPlace();
      const other = newPlace(managed.tenantId);
      const inManaged = chunkAt(managed, [1, 0, 0, 0], ['user-1']);
      const inOther = chunkAt(other, [1, 0.1, 0, 0], ['user-1']);
      await store.upsert([inManaged, inOther]);
      const both = { knowledgeBaseIds: [managed.knowledgeBaseId, other.knowledgeBaseId], reader: ['user-2'] };
      assert.deepEqual(idsOf(await search(managed, [1, 0, 0, 0], { ...both, unrestrictedKnowledgeBaseIds: [managed.knowledgeBaseId] })), [inManaged.id]);
      assert.deepEqual(idsOf(await search(managed, [1, 0, 0, 0], both)), []);
    });

    test('upserting a chunk again replaces its vector, place and readers', async () => {
      const first = newPlace();
      const moved = newPlace(first.tenantId);
      const original = chunkAt(first, [1, 0, 0, 0], ['user-1']);
      await store.upsert([original]);
      const replaced: ChunkVector = { ...original, ...moved, vector: Float32Array.from([0, 1, 0, 0]), readers: [] };
      await store.upsert([replaced]);

      assert.deepEqual(await search(first, [1, 0, 0, 0], { reader: ['user-1'] }), []);
      const [hit, ...rest] = await search(moved, [0, 1, 0, 0]);
      assert.deepEqual(rest, []);
      assert.equal(hit!.id, original.id);
      assert.equal(hit!.documentId, moved.documentId);
      assert.ok(Math.abs(hit!.score - 1) < 1e-5);
    });

    test('of one id upserted twice in one call, the last wins', async () => {
      const place = newPlace();
      const first = chunkAt(place, [1, 0, 0, 0]);
      await store.upsert([first, { ...first, vector: Float32Array.from([0, 0, 0, 1]) }]);
      const [hit] = await search(place, [0, 0, 0, 1]);
      assert.ok(Math.abs(hit!.score - 1) < 1e-5);
    });

    test('deleteDocument removes exactly that document', async () => {
      const doomed = newPlace();
      const kept = { ...doomed, documentId: randomUUID() };
      const chunks = [chunkAt(doomed, [1, 0, 0, 0]), chunkAt(doomed, [1, 1, 0, 0]), chunkAt(kept, [1, 0.5, 0, 0])];
      await store.upsert(chunks);

      await store.deleteDocument(doomed.tenantId, doomed.documentId);
      assert.deepEqual(idsOf(await search(doomed, [1, 0, 0, 0])), [chunks[2]!.id]);
    });

    test('deleteKnowledgeBase removes exactly that knowledge base', async () => {
      const doomed = newPlace();
      const kept = newPlace(doomed.tenantId);
      const chunks = [chunkAt(doomed, [1, 0, 0, 0]), { ...chunkAt(doomed, [1, 1, 0, 0]), documentId: randomUUID() }, chunkAt(kept, [1, 0, 0, 0])];
      await store.upsert(chunks);

      await store.deleteKnowledgeBase(doomed.tenantId, doomed.knowledgeBaseId);
      assert.deepEqual(await search(doomed, [1, 0, 0, 0]), []);
      assert.deepEqual(idsOf(await search(kept, [1, 0, 0, 0])), [chunks[2]!.id]);
    });

    test("a DEDICATED tenant's chunks are found, kept apart and deleted as a shared tenant's are", async () => {
      const place = newPlace();
      const dedicated = (chunk: ChunkVector): ChunkVector => ({ ...chunk, isolation: 'DEDICATED' });
      const [near, far] = [dedicated(chunkAt(place, [1, 0.1, 0, 0])), dedicated(chunkAt(place, [0, 1, 0, 0]))];
      const other = dedicated(chunkAt(newPlace(), [1, 0, 0, 0]));
      await store.upsert([far!, near!, other]);

      const hits = await search(place, [1, 0, 0, 0], { isolation: 'DEDICATED' });
      assert.deepEqual(idsOf(hits), [near!.id, far!.id]);
      assert.ok(Math.abs(hits[0]!.score - 1 / Math.sqrt(1.01)) < 1e-5);
      await store.deleteDocument(place.tenantId, place.documentId, 'DEDICATED');
      assert.deepEqual(await search(place, [1, 0, 0, 0], { isolation: 'DEDICATED' }), []);
      assert.deepEqual(idsOf(await search({ ...place, tenantId: other.tenantId, knowledgeBaseId: other.knowledgeBaseId }, [1, 0, 0, 0], { isolation: 'DEDICATED' })), [other.id]);
    });

    if (variant.name.startsWith('pgvector')) test("on pgvector, a DEDICATED tenant's table gets the dimensions and HNSW index: a new schema when it is created, existing ones at ensureCollection", async () => {
      const db = opened.db!;
      const newcomer = randomUUID();
      await store.upsert([{ ...chunkAt(newPlace(newcomer), [1, 0, 0, 0]), isolation: 'DEDICATED' }]);
      const shaped = await vectorTableShape(db, dedicatedSchemaName(db.schema, newcomer));
      assert.equal(shaped.dimensions, 4);
      assert.match(shaped.index ?? 'no index', HNSW_COSINE);

      // A schema some other part of the service creates (a document added) is shaped in the transaction that creates it.
      const earlier = randomUUID();
      await db.withDedicatedTenant(earlier, async () => {});
      const earlierSchema = dedicatedSchemaName(db.schema, earlier);
      assert.equal((await vectorTableShape(db, earlierSchema)).dimensions, 4, 'shaped when created');
      // As one created before this store was opened (or by a release without shaping) would be: unshaped.
      await db.withSystem(async (tx) => {
        const [extension] = await tx.query<{ schema: string }>(`SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'vector'`);
        await tx.exec(`DROP INDEX ${earlierSchema}.chunk_vectors_embedding_idx;
          ALTER TABLE ${earlierSchema}.chunk_vectors ALTER COLUMN embedding TYPE ${extension!.schema}.vector`);
      });
      assert.deepEqual(await vectorTableShape(db, earlierSchema), { dimensions: -1, index: null }, 'a new schema is unshaped');
      const reopened = await openVectorStore({ db });
      await reopened.ensureCollection(4);
      const atStart = await vectorTableShape(db, earlierSchema);
      assert.equal(atStart.dimensions, 4);
      assert.match(atStart.index ?? 'no index', HNSW_COSINE);
      await assert.rejects(reopened.ensureCollection(5), /4-dimensional/);
    });

    test('ensureCollection is idempotent and keeps what is stored; other dimensions are refused', async () => {
      const place = newPlace();
      const chunk = chunkAt(place, [0, 1, 1, 0]);
      await store.upsert([chunk]);

      await store.ensureCollection(4);
      await store.ensureCollection(4);
      assert.deepEqual(idsOf(await search(place, [0, 1, 1, 0])), [chunk.id]);
      await assert.rejects(store.ensureCollection(5), /4-dimensional/);
      await assert.rejects(store.upsert([chunkAt(place, [1, 0, 0])]), /expected a 4-dimensional vector/);
      await assert.rejects(search(place, [1, 0, 0, 0, 0]), /expected a 4-dimensional vector/);
    });
  });
}

/** Deterministic vectors, so a recall below the bar fails every run, not one in a hundred. */
function randomVectors(count: number, dimensions: number, seed: number): Float32Array[] {
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return Array.from({ length: count }, () => Float32Array.from({ length: dimensions }, () => next() * 2 - 1));
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    normA += a[i]! * a[i]!;
    normB += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(normA * normB);
}

function exactTopK(chunks: ChunkVector[], query: Float32Array, k: number): string[] {
  return chunks
    .map((chunk) => ({ id: chunk.id, score: cosine(query, chunk.vector) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k)
    .map((scored) => scored.id);
}

for (const variant of storeVariants) {
  describe(`vector store recall: ${variant.name}`, { skip: variant.skip }, () => {
    const DIMENSIONS = 384;
    const tenantId = randomUUID();
    const large = randomUUID();
    const small = randomUUID();
    const queries = randomVectors(40, DIMENSIONS, 7);
    let opened: OpenedStore;
    let chunks: ChunkVector[];

    before(async () => {
      opened = await variant.open();
      await opened.store.ensureCollection(DIMENSIONS);
      chunks = randomVectors(2000, DIMENSIONS, 42).map((vector, i) => ({
        id: randomUUID(),
        tenantId,
        knowledgeBaseId: i % 20 === 0 ? small : large,
        documentId: randomUUID(),
        vector,
        readers: i % 50 === 1 ? [] : ['group-legal'],
      }));
      await opened.store.upsert(chunks);
      // What autovacuum does on a server (PGlite has none): statistics, without which the planner never
      // expects enough rows to prefer the HNSW index.
      await opened.db?.withSystem((tx) => tx.exec('ANALYZE chunk_vectors'));
    });

    const queryParams = (knowledgeBaseIds: string[], reader = ['group-legal']) => [`[${queries[0]!.join(',')}]`, knowledgeBaseIds, reader, 10, []];
    after(() => opened?.close());

    const recallOf = async (knowledgeBaseIds: string[], reader: string[]) => {
      const candidates = chunks.filter(
        (chunk) =>
          knowledgeBaseIds.includes(chunk.knowledgeBaseId) &&
          (chunk.readers!.length === 0 || chunk.readers!.some((principal) => reader.includes(principal))),
      );
      let found = 0;
      for (const vector of queries) {
        const hits = await opened.store.search({ tenantId, knowledgeBaseIds, vector, topK: 10, reader });
        assert.equal(hits.length, 10);
        const exact = exactTopK(candidates, vector, 10);
        found += hits.filter((hit) => exact.includes(hit.id)).length;
      }
      return found / (queries.length * 10);
    };

    /** 1 unless the search goes through an approximate index: pgvector's when the planner picks HNSW, Qdrant's. */
    const requiredRecall = async (knowledgeBaseIds: string[], reader: string[]) => {
      if (variant.exact) return 1;
      if (!opened.db) return ANN_RECALL;
      return USES_HNSW.test(await searchPlan(opened.db, tenantId, 'SHARED', queryParams(knowledgeBaseIds, reader))) ? ANN_RECALL : 1;
    };

    const assertRecall = async (knowledgeBaseIds: string[], reader: string[]) => {
      const [recall, required] = await Promise.all([recallOf(knowledgeBaseIds, reader), requiredRecall(knowledgeBaseIds, reader)]);
      assert.ok(recall >= required, `recall ${recall}, required ${required}`);
    };

    test('top-10 recall over 2,000 random 384-dimensional vectors: all of it when exact, at least 0.95 through HNSW', () =>
      assertRecall([large, small], ['group-legal']));

    test('a search confined to a small knowledge base still fills topK with its nearest chunks', () => assertRecall([small], ['group-legal']));

    test('a reader who may see few chunks still gets topK of them, the nearest', () => assertRecall([large, small], ['user-outside-legal']));

    // Only pgvector has a query plan to inspect.
    if (variant.name.startsWith('pgvector')) test('on pgvector, searching the whole collection goes through the HNSW index', async () => {
      const plan = await searchPlan(opened.db!, tenantId, 'SHARED', queryParams([large, small]));
      assert.match(plan, USES_HNSW);
    });

    if (variant.name.startsWith('pgvector')) test("on pgvector, a DEDICATED tenant's search goes through the HNSW index in its own schema, with the same recall", async () => {
      const db = opened.db!;
      const dedicatedTenant = randomUUID();
      const own = chunks.map((chunk) => ({ ...chunk, id: randomUUID(), tenantId: dedicatedTenant, isolation: 'DEDICATED' as const }));
      await opened.store.upsert(own);
      const schema = dedicatedSchemaName(db.schema, dedicatedTenant);
      await db.withSystem((tx) => tx.exec(`ANALYZE ${schema}.chunk_vectors`));

      assert.match((await vectorTableShape(db, schema)).index ?? 'no index', HNSW_COSINE);
      const plan = await searchPlan(db, dedicatedTenant, 'DEDICATED', queryParams([large, small]));
      assert.match(plan, /Index Scan using chunk_vectors_embedding_idx on chunk_vectors/);
      assert.doesNotMatch(plan, /Seq Scan/);
      let found = 0;
      for (const vector of queries) {
        const hits = await opened.store.search({ tenantId: dedicatedTenant, isolation: 'DEDICATED', knowledgeBaseIds: [large, small], vector, topK: 10, reader: ['group-legal'] });
        assert.equal(hits.length, 10);
        const exact = exactTopK(own.filter((chunk) => chunk.readers!.length === 0 || chunk.readers!.includes('group-legal')), vector, 10);
        found += hits.filter((hit) => exact.includes(hit.id)).length;
      }
      assert.ok(found / (queries.length * 10) >= ANN_RECALL, `recall ${found / (queries.length * 10)}`);
    });
  });
}

describe('openVectorStore', () => {
  test('keeps vectors in Qdrant when a URL is given, in pgvector otherwise', async () => {
    const db = await openTestDatabase(pglite, 'knowledge');
    const server = await startFakeQdrant();
    try {
      await db.migrate(MIGRATIONS);
      const pgvector = await openVectorStore({ db });
      assert.equal(pgvector.kind, 'pgvector');
      assert.equal(pgvector.fallbackReason, undefined);
      assert.equal((await openVectorStore({ db, qdrantUrl: server.url })).kind, 'qdrant');
    } finally {
      await Promise.all([db.close(), server.close()]);
    }
  });

  test('falls back to the exact store when the pgvector table is missing, and says why', async () => {
    const db = await openTestDatabase(pglite, 'knowledge');
    try {
      await db.migrate(MIGRATIONS);
      await db.withSystem((tx) => tx.exec('DROP TABLE chunk_vectors'));
      const store = await openVectorStore({ db });
      assert.equal(store.kind, 'exact');
      assert.match(store.fallbackReason ?? '', /chunk_vectors does not exist/);
    } finally {
      await db.close();
    }
  });

  describe('on PostgreSQL without pgvector', {
    skip: postgres.skip || (postgresHasPgvector ? 'the PostgreSQL at DATABASE_URL has pgvector' : false),
  }, () => {
    let db: Database;
    before(async () => {
      db = await openTestDatabase(postgres, 'knowledge');
    });
    after(() => db?.close());

    test('the knowledge migrations still apply, and vectors go to the exact store, saying why', async () => {
      const applied = await db.migrate(MIGRATIONS);
      assert.deepEqual(applied.slice(0, 2), ['0001_knowledge_bases.sql', '0002_chunk_vectors.sql']);
      assert.ok(applied.includes('0004_chunk_embeddings.sql'));
      const store = await openVectorStore({ db });
      assert.equal(store.kind, 'exact');
      assert.match(store.fallbackReason ?? '', /no "vector" extension/);
      assert.match(store.fallbackReason ?? '', /QDRANT_URL/);
    });
  });
});
