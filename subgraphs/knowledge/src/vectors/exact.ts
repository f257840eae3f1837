import { enterTenant, type Database } from '@jarvis/platform/db';
import { groupBy } from '@jarvis/platform/subgraph';
import {
  checkDimensionCount,
  checkTopK,
  Dimensions,
  inBatches,
  lastOfEachId,
  rowsAsJson,
  type ChunkVector,
  type VectorHit,
  type VectorStore,
} from './port.ts';

const ROWS_PER_INSERT = 500;

const UPSERT = `INSERT INTO chunk_embeddings (id, tenant_id, knowledge_base_id, document_id, readers, embedding)
  SELECT c.id, c.tenant_id, c.knowledge_base_id, c.document_id, c.readers, c.embedding
  FROM jsonb_to_recordset($1::jsonb)
    AS c(id uuid, tenant_id uuid, knowledge_base_id uuid, document_id uuid, readers text[], embedding real[])
  ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, knowledge_base_id = excluded.knowledge_base_id,
    document_id = excluded.document_id, readers = excluded.readers, embedding = excluded.embedding`;

/**
 * Stored and asked vectors both have unit length, so their dot product is the cosine. Scoring here beats
 * fetching the arrays and scoring in JS, whose transfer costs more than the arithmetic. Two unnests in a select
 * list stream (a ProjectSet) where `unnest(a, b)` in FROM materialises each row's pairs: on 20k×1024 that is
 * 1.1 s against 1.9 s on PostgreSQL 15. Single precision, as pgvector computes: double costs PGlite half again.
 * Rows of another length (a knowledge base of another embedder) would pair with nulls: they are left out.
 */
const NEAREST = `SELECT id, document_id AS "documentId", knowledge_base_id AS "knowledgeBaseId",
    (SELECT sum(stored * asked) FROM (SELECT unnest(embedding) AS stored, unnest($1::real[]) AS asked) AS pairs) AS score
  FROM chunk_embeddings
  WHERE knowledge_base_id = ANY($2::uuid[])
    AND (readers = '{}' OR readers && $3::text[] OR knowledge_base_id = ANY($5::uuid[]))
    AND cardinality(embedding) = cardinality($1::real[])
  ORDER BY score DESC
  LIMIT $4`;

/**
 * Chunk vectors as plain `real[]` in the knowledge schema's `chunk_embeddings` (migration 0004), searched
 * exactly: every candidate row is compared with the query. It needs no extension, so it is the store of a
 * PostgreSQL without pgvector. Like the pgvector store it runs every statement in a tenant transaction, and
 * row-level security keeps each tenant to its own rows.
 */
export function openExactStore(db: Database): VectorStore {
  const dimensions = new Dimensions();
  let preparedCount: number | undefined;

  return {
    kind: 'exact',
    async ensureCollection(count) {
      checkDimensionCount(count);
      if (preparedCount !== undefined && preparedCount !== count) {
        throw new RangeError(`this store holds ${preparedCount}-dimensional vectors, not ${count}`);
      }
      preparedCount = count;
      dimensions.prepared(count);
    },
    async upsert(chunks) {
      dimensions.check(chunks.map((chunk) => chunk.vector));
      for (const ofTenant of groupBy(lastOfEachId(chunks), (chunk) => chunk.tenantId).values()) {
        const { tenantId, isolation = 'SHARED' } = ofTenant[0]!;
        await enterTenant(db, isolation)(tenantId, async (tx) => {
          for (const batch of inBatches(ofTenant, ROWS_PER_INSERT)) await tx.query(UPSERT, [rowsAsJson(batch, unitLength)]);
        });
      }
    },
    async search(query) {
      dimensions.check([query.vector]);
      checkTopK(query.topK);
      if (query.knowledgeBaseIds.length === 0) return [];
      return enterTenant(db, query.isolation ?? 'SHARED')(query.tenantId, (tx) =>
        tx.query<VectorHit>(NEAREST, [
          unitLength(query.vector),
          query.knowledgeBaseIds,
          query.reader ?? [],
          query.topK,
          query.unrestrictedKnowledgeBaseIds ?? [],
        ]),
      );
    },
    async deleteDocument(tenantId, documentId, isolation = 'SHARED') {
      await enterTenant(db, isolation)(tenantId, (tx) =>
        tx.query(`DELETE FROM chunk_embeddings WHERE document_id = $1`, [documentId]),
      );
    },
    async deleteKnowledgeBase(tenantId, knowledgeBaseId, isolation = 'SHARED') {
      await enterTenant(db, isolation)(tenantId, (tx) =>
        tx.query(`DELETE FROM chunk_embeddings WHERE knowledge_base_id = $1`, [knowledgeBaseId]),
      );
    },
    // The database belongs to the subgraph, which closes it.
    close: async () => {},
  };
}

/** The vector scaled to length 1; a zero vector has no direction and stays zero, so it scores 0 against anything. */
function unitLength(vector: Float32Array): number[] {
  let squares = 0;
  for (const component of vector) squares += component * component;
  const length = Math.sqrt(squares);
  return Array.from(vector, (component) => (length === 0 ? 0 : component / length));
}

