/**
 * Vector store recall, on every store variant: top-10 over 2,000 random 384-dimensional vectors, whole and
 * confined to few candidates, against an exact search; and on pgvector, that the search goes through the HNSW
 * index, a DEDICATED tenant's in its own schema.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { dedicatedSchemaName, type Database } from '@jarvis/platform/db';
import type { ChunkVector } from '../src/vectors/index.ts';
import { searchSql } from '../src/vectors/pgvector.ts';
import { HNSW_COSINE, storeVariants, vectorTableShape, type OpenedStore } from './vector-store-variants.ts';
import { cosine } from './fake-qdrant.ts';

/** What an approximate (HNSW) index must find of the true top-k; an exact search must find all of it. */
const ANN_RECALL = 0.95;
const USES_HNSW = /Index Scan using chunk_vectors_embedding_idx/;

/** The plan of the pgvector store's search, as the tenant's transaction (shared or dedicated schema) would run it. */
async function searchPlan(db: Database, tenantId: string, isolation: 'SHARED' | 'DEDICATED', params: unknown[]): Promise<string> {
  const enter = isolation === 'DEDICATED' ? db.withDedicatedTenant : db.withTenant;
  return enter(tenantId, async (tx) => {
    const [extension] = await tx.query<{ schema: string }>(`SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'vector'`);
    const rows = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${searchSql(extension!.schema)}`, params);
    return rows.map((row) => row['QUERY PLAN']).join('\n');
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
