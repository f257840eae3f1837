import { enterTenant, type Database, type Transaction } from '@jarvis/platform/db';
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
  type VectorQuery,
  type VectorStore,
} from './port.ts';

/** The database cannot hold vectors; the message says why and what to do. */
export class VectorStoreUnavailableError extends Error {
  override name = 'VectorStoreUnavailableError';
}

/**
 * HNSW candidates per search. With pgvector's default (40) the top-10 recall on 2,000 random 384-dimensional
 * vectors is about 0.75; with 100 it is above 0.95, for a little more time per search.
 */
const EF_SEARCH = 100;
const ROWS_PER_INSERT = 500;

/**
 * Chunk vectors in the knowledge schema's `chunk_vectors` (migration 0002), under row-level security: every
 * statement runs in a tenant transaction, so no query reaches another tenant's rows whatever it filters on.
 * A DEDICATED tenant's vectors are in its own schema's `chunk_vectors`, which gets the same dimension count
 * and HNSW index as the shared one (Database.prepareSchemas): a new schema's in the transaction that creates
 * it, so the index is built while the table is still empty.
 */
export async function openPgvectorStore(db: Database): Promise<VectorStore> {
  const vectorSchema = await requireVectorSchema(db);
  const sql = statements(vectorSchema);
  const dimensions = new Dimensions();
  return {
    kind: 'pgvector',
    async ensureCollection(count) {
      checkDimensionCount(count);
      await db.prepareSchemas((tx, schema) => shapeTable(tx, sql, schema, count));
      dimensions.prepared(count);
    },
    async upsert(chunks) {
      dimensions.check(chunks.map((chunk) => chunk.vector));
      for (const ofTenant of groupBy(lastOfEachId(chunks), (chunk) => chunk.tenantId).values()) {
        const { tenantId, isolation = 'SHARED' } = ofTenant[0]!;
        await enterTenant(db, isolation)(tenantId, async (tx) => {
          for (const batch of inBatches(ofTenant, ROWS_PER_INSERT)) await tx.query(sql.upsert, [rowsAsJson(batch, (vector) => Array.from(vector))]);
        });
      }
    },
    async search(query) {
      dimensions.check([query.vector]);
      checkTopK(query.topK);
      if (query.knowledgeBaseIds.length === 0) return [];
      return enterTenant(db, query.isolation ?? 'SHARED')(query.tenantId, (tx) => nearest(tx, sql, query));
    },
    async deleteDocument(tenantId, documentId, isolation = 'SHARED') {
      await enterTenant(db, isolation)(tenantId, (tx) => tx.query(`DELETE FROM chunk_vectors WHERE document_id = $1`, [documentId]));
    },
    async deleteKnowledgeBase(tenantId, knowledgeBaseId, isolation = 'SHARED') {
      await enterTenant(db, isolation)(tenantId, (tx) =>
        tx.query(`DELETE FROM chunk_vectors WHERE knowledge_base_id = $1`, [knowledgeBaseId]),
      );
    },
    // The database belongs to the subgraph, which closes it.
    close: async () => {},
  };
}

interface Availability {
  table: boolean;
  installable: boolean;
  vectorSchema: string | null;
}

/**
 * The schema holding pgvector's type and operators, which the service's search_path does not include; or why
 * this database cannot hold vectors.
 */
async function requireVectorSchema(db: Database): Promise<string> {
  const [found] = await db.withoutTenant((tx) =>
    tx.query<Availability>(`SELECT
      to_regclass('chunk_vectors') IS NOT NULL AS "table",
      EXISTS (SELECT FROM pg_available_extensions WHERE name = 'vector') AS installable,
      (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector') AS "vectorSchema"`),
  );
  if (found!.table && found!.vectorSchema) return found!.vectorSchema;
  throw new VectorStoreUnavailableError(unavailableReason(db.schema, found!.installable));
}

function unavailableReason(schema: string, installable: boolean): string {
  if (!installable) {
    return 'the pgvector store is unavailable: this PostgreSQL has no "vector" extension (pgvector); ' +
      'use a PostgreSQL with pgvector installed, or set QDRANT_URL to keep vectors in Qdrant';
  }
  return `the pgvector store is unavailable: ${schema}.chunk_vectors does not exist because pgvector was not ` +
    `installed when migration 0002_chunk_vectors.sql ran; delete that row from ${schema}.schema_migrations ` +
    'and restart to create it';
}

/** The statement `search` runs, for tests that check its plan. */
export const searchSql = (vectorSchema: string): string => statements(vectorSchema).nearest;

interface Statements {
  vectorSchema: string;
  upsert: string;
  nearest: string;
}

/** `vectorSchema` comes from the catalog as a quoted identifier, so it splices safely. */
function statements(vectorSchema: string): Statements {
  const distance = `embedding OPERATOR(${vectorSchema}.<=>) $1::${vectorSchema}.vector`;
  return {
    vectorSchema,
    upsert: `INSERT INTO chunk_vectors (id, tenant_id, knowledge_base_id, document_id, readers, embedding)
      SELECT c.id, c.tenant_id, c.knowledge_base_id, c.document_id, c.readers, c.embedding::${vectorSchema}.vector
      FROM jsonb_to_recordset($1::jsonb)
        AS c(id uuid, tenant_id uuid, knowledge_base_id uuid, document_id uuid, readers text[], embedding real[])
      ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, knowledge_base_id = excluded.knowledge_base_id,
        document_id = excluded.document_id, readers = excluded.readers, embedding = excluded.embedding`,
    nearest: `SELECT id, document_id AS "documentId", knowledge_base_id AS "knowledgeBaseId", 1 - (${distance}) AS score
      FROM chunk_vectors
      WHERE knowledge_base_id = ANY($2::uuid[])
        AND (readers = '{}' OR readers && $3::text[] OR knowledge_base_id = ANY($5::uuid[]))
      ORDER BY ${distance}
      LIMIT $4`,
  };
}

/**
 * Gives `schema`'s embedding column its dimension count and builds the HNSW index, once, on the empty table;
 * later calls find both in place. (A table that already holds rows — a DEDICATED schema from before its
 * tables were shaped — is shaped all the same: building the index then takes a while, once.) The lock keeps
 * two services starting together from altering it at once. `schema` is the service's checked schema or one
 * read from the catalog.
 */
async function shapeTable(tx: Transaction, sql: Statements, schema: string, dimensions: number): Promise<void> {
  const table = `${schema}.chunk_vectors`;
  await tx.query(`LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`);
  const [column] = await tx.query<{ dimensions: number }>(
    `SELECT atttypmod AS dimensions FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'embedding'`,
    [table],
  );
  if (column!.dimensions === -1) {
    await tx.exec(`ALTER TABLE ${table} ALTER COLUMN embedding TYPE ${sql.vectorSchema}.vector(${dimensions})`);
  } else if (column!.dimensions !== dimensions) {
    throw new Error(`${table} holds ${column!.dimensions}-dimensional vectors, not ${dimensions}`);
  }
  await tx.exec(
    `CREATE INDEX IF NOT EXISTS chunk_vectors_embedding_idx ON ${table} USING hnsw (embedding ${sql.vectorSchema}.vector_cosine_ops)`,
  );
}

async function nearest(tx: Transaction, sql: Statements, query: VectorQuery): Promise<VectorHit[]> {
  // Iterative scans (pgvector 0.8) keep walking the graph until enough rows pass the tenant, knowledge base
  // and reader filters; without them a filtered search returns fewer than topK.
  await tx.query(`SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'strict_order', true)`, [
    String(Math.min(1000, Math.max(EF_SEARCH, query.topK))),
  ]);
  return tx.query<VectorHit>(sql.nearest, [
    vectorLiteral(query.vector),
    query.knowledgeBaseIds,
    query.reader ?? [],
    query.topK,
    query.unrestrictedKnowledgeBaseIds ?? [],
  ]);
}


function vectorLiteral(vector: Float32Array): string {
  return `[${vector.join(',')}]`;
}
