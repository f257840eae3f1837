/**
 * Chunks and their lexical index (migration 0003): one `chunks` row per chunk, one `chunk_terms` posting per
 * chunk and analyzer term, and Okapi BM25 over those postings in SQL. Every function takes a tenant
 * transaction, so row-level security confines it to that tenant's rows whatever it filters on.
 */
import type { Database, Transaction } from '@jarvis/platform/db';
import { analyze } from '@jarvis/platform/text';
import { DEFAULT_BM25 } from '../retrieval/bm25.ts';
import type { ScoredId } from '../retrieval/ranking.ts';

export interface StoredChunk {
  id: string;
  tenantId: string;
  knowledgeBaseId: string;
  documentId: string;
  ordinal: number;
  content: string;
  /** The headings the chunk sits under, outermost first. */
  sectionPath: string[];
  /** [startOffset, endOffset) of the document's extracted text. */
  startOffset: number;
  endOffset: number;
  /** `user:<uuid>` / `group:<uuid>` who may read it; empty: everyone who may read the knowledge base. */
  readers: string[];
}

/** What a passage with its citation is built from. */
export type ChunkRow = Omit<StoredChunk, 'tenantId' | 'readers'>;

export interface LexicalQuery {
  knowledgeBaseIds: string[];
  text: string;
  topK: number;
  /** The caller as readers (`user:<uuid>`, `group:<uuid>`s): restricted chunks are found only by theirs. */
  reader: string[];
  /** Knowledge bases whose restricted chunks the caller sees all the same (those it manages). */
  unrestrictedKnowledgeBaseIds: string[];
}

/**
 * Postings per INSERT statement, about 200 SciFact abstracts: writing them takes about a second on PGlite,
 * against a millisecond of planning and round trip, so bigger statements would only hold more memory.
 * Nearly all of that second is the two indexes on chunk_terms and the foreign-key check of each posting.
 */
const POSTINGS_PER_STATEMENT = 20_000;

interface ChunkRecord {
  id: string;
  tenant_id: string;
  knowledge_base_id: string;
  document_id: string;
  ordinal: number;
  content: string;
  section_path: string[];
  start_offset: number;
  end_offset: number;
  term_count: number;
  readers: string[];
  terms: string[];
  frequencies: number[];
}

/**
 * The chunks and their postings in one statement per batch: the postings come out of the same JSON records
 * (each chunk carries its terms), so no id is sent once per posting. The foreign key from the postings to the
 * chunks is checked at the end of the statement, when the chunk rows are there.
 */
const INSERT_CHUNKS = `WITH batch AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS c(id uuid, tenant_id uuid, knowledge_base_id uuid,
      document_id uuid, ordinal integer, content text, section_path text[], start_offset integer,
      end_offset integer, term_count integer, readers text[], terms text[], frequencies integer[])
  ), inserted AS (
    INSERT INTO chunks (id, tenant_id, knowledge_base_id, document_id, ordinal, content, section_path,
      start_offset, end_offset, term_count, readers)
    SELECT id, tenant_id, knowledge_base_id, document_id, ordinal, content, section_path,
      start_offset, end_offset, term_count, readers
    FROM batch
  )
  INSERT INTO chunk_terms (chunk_id, tenant_id, knowledge_base_id, term, frequency)
  SELECT batch.id, batch.tenant_id, batch.knowledge_base_id, posting.term, posting.frequency
  FROM batch, unnest(batch.terms, batch.frequencies) AS posting(term, frequency)`;

/**
 * Stores chunks with their postings; a chunk id already stored is refused (unique violation). Returns the rows
 * written: the chunks and their postings.
 */
export async function insertChunks(tx: Transaction, chunks: StoredChunk[]): Promise<number> {
  let rows = 0;
  for (const batch of batchesOfPostings(chunks.map(chunkRecord))) {
    await tx.query(INSERT_CHUNKS, [JSON.stringify(batch)]);
    rows += batch.reduce((sum, record) => sum + 1 + record.terms.length, 0);
  }
  return rows;
}

function chunkRecord(chunk: StoredChunk): ChunkRecord {
  const terms = analyze(chunk.content);
  const frequencies = termFrequencies(terms);
  return {
    id: chunk.id,
    tenant_id: chunk.tenantId,
    knowledge_base_id: chunk.knowledgeBaseId,
    document_id: chunk.documentId,
    ordinal: chunk.ordinal,
    content: chunk.content,
    section_path: chunk.sectionPath,
    start_offset: chunk.startOffset,
    end_offset: chunk.endOffset,
    term_count: terms.length,
    readers: chunk.readers,
    terms: [...frequencies.keys()],
    frequencies: [...frequencies.values()],
  };
}

function termFrequencies(terms: string[]): Map<string, number> {
  const frequencies = new Map<string, number>();
  for (const term of terms) frequencies.set(term, (frequencies.get(term) ?? 0) + 1);
  return frequencies;
}

function* batchesOfPostings(records: ChunkRecord[]): Generator<ChunkRecord[]> {
  let batch: ChunkRecord[] = [];
  let postings = 0;
  for (const record of records) {
    if (batch.length > 0 && postings + record.terms.length > POSTINGS_PER_STATEMENT) {
      yield batch;
      batch = [];
      postings = 0;
    }
    batch.push(record);
    postings += record.terms.length;
  }
  if (batch.length > 0) yield batch;
}

/** Deletes a document's chunks (their postings go with them, ON DELETE CASCADE); returns how many. */
export async function deleteChunksOfDocument(tx: Transaction, documentId: string): Promise<number> {
  const [row] = await tx.query<{ deleted: number }>(
    `WITH deleted AS (DELETE FROM chunks WHERE document_id = $1 RETURNING 1) SELECT count(*)::integer AS deleted FROM deleted`,
    [documentId],
  );
  return row!.deleted;
}

/**
 * Okapi BM25 as src/retrieval/bm25.ts computes it, over the given knowledge bases taken as one corpus:
 *   idf(t)   = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
 *   score(c) = Σ qf(t) · idf(t) · (k1 + 1) · tf(t, c) / (tf(t, c) + k1 · (1 − b + b · |c| / avgdl))
 * N and avgdl come from knowledge_base_lexical_stats (migration 0006) and df from the postings read, so they
 * count every chunk of those knowledge bases, visible to the reader or not: a chunk's score does not depend on
 * who asks. Only the query terms' postings are read (chunk_terms_term_idx), and the matched chunks' lengths
 * and readers from `chunks`. The arithmetic is in bm25.ts's order, so the scores agree to the last bits.
 * `corpus` is MATERIALIZED: inlined, the planner recomputed it for every posting.
 * $1 knowledge bases, $2 query terms (distinct), $3 their frequencies in the query, $4 reader, $5 unrestricted
 * knowledge bases, $6 topK, $7 k1, $8 b.
 */
const SEARCH_LEXICAL = `WITH totals AS (
    SELECT coalesce(sum(chunk_count), 0)::float8 AS chunk_count, coalesce(sum(term_count), 0)::float8 AS term_count
    FROM knowledge_base_lexical_stats
    WHERE knowledge_base_id = ANY($1::uuid[])
  ), corpus AS MATERIALIZED (
    SELECT chunk_count, coalesce(nullif(term_count / greatest(chunk_count, 1), 0), 1) AS average_length FROM totals
  ), postings AS (
    SELECT chunk_id, term, frequency, count(*) OVER (PARTITION BY term) AS document_frequency
    FROM chunk_terms
    WHERE knowledge_base_id = ANY($1::uuid[]) AND term = ANY($2::text[])
  )
  SELECT chunk.id, sum(
      ($3::integer[])[array_position($2::text[], p.term)]
      * ln(1 + (corpus.chunk_count - p.document_frequency + 0.5) / (p.document_frequency + 0.5))
      * ($7::float8 + 1) * p.frequency
      / (p.frequency + $7::float8 * (1 - $8::float8 + $8::float8 * chunk.term_count / corpus.average_length))
    ) AS score
  FROM postings AS p
    JOIN chunks AS chunk ON chunk.id = p.chunk_id
    CROSS JOIN corpus
  WHERE chunk.readers = '{}' OR chunk.readers && $4::text[] OR chunk.knowledge_base_id = ANY($5::uuid[])
  GROUP BY chunk.id
  ORDER BY score DESC, chunk.id
  LIMIT $6`;

export interface Statement {
  sql: string;
  params: unknown[];
}

/** The statement searchLexical runs, or null when nothing can match; exported so tests can EXPLAIN it. */
export function lexicalSearchStatement(query: LexicalQuery): Statement | null {
  checkTopK(query.topK);
  const queryTerms = termFrequencies(analyze(query.text));
  if (query.knowledgeBaseIds.length === 0 || queryTerms.size === 0) return null;
  const { k1, b } = DEFAULT_BM25;
  return {
    sql: SEARCH_LEXICAL,
    params: [
      query.knowledgeBaseIds,
      [...queryTerms.keys()],
      [...queryTerms.values()],
      query.reader,
      query.unrestrictedKnowledgeBaseIds,
      query.topK,
      k1,
      b,
    ],
  };
}

/** The `topK` chunks the reader may see, best first (equal scores in id order); chunks sharing no term are not found. */
export async function searchLexical(tx: Transaction, query: LexicalQuery): Promise<ScoredId[]> {
  const statement = lexicalSearchStatement(query);
  if (!statement) return [];
  return tx.query<ScoredId>(statement.sql, statement.params);
}

function checkTopK(topK: number): void {
  if (!Number.isInteger(topK) || topK < 1) throw new RangeError(`topK must be a positive integer, got ${topK}`);
}

/** The chunks with these ids (in no particular order); ids of other tenants or of no chunk are left out. */
export function chunksByIds(tx: Transaction, ids: string[]): Promise<ChunkRow[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return tx.query<ChunkRow>(
    `SELECT id, document_id AS "documentId", knowledge_base_id AS "knowledgeBaseId", ordinal, content,
      section_path AS "sectionPath", start_offset AS "startOffset", end_offset AS "endOffset"
    FROM chunks WHERE id = ANY($1::uuid[])`,
    [ids],
  );
}

/**
 * Planner statistics for the chunk tables of `schema` (the service's, or a DEDICATED tenant's), after a bulk
 * import. PostgreSQL's autovacuum gathers them on its own; PGlite has no autovacuum, and until they exist the
 * planner takes the tables for nearly empty; the ingestion worker calls it when they have grown enough
 * (chunks/statistics.ts). `schema` is the service's checked name or one built from it.
 */
export async function analyzeChunks(db: Database, schema: string = db.schema): Promise<void> {
  // The vector tables grow with the chunks: without their statistics the planner scans every vector instead of
  // the HNSW index (2.5 s against 40 ms per search at 100k chunks on PGlite; BENCHMARKS.md).
  // chunk_vectors exists only where pgvector does.
  const tables = ['chunks', 'chunk_terms', 'knowledge_base_lexical_stats', 'chunk_vectors', 'chunk_embeddings'].map((table) => `${schema}.${table}`);
  await db.withSystem(async (tx) => {
    const present = await tx.query<{ name: string }>(`SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL`, [tables]);
    await tx.exec(`ANALYZE ${present.map((row) => row.name).join(', ')}`);
  });
}

/** The rows of `schema`'s chunks and chunk_terms as the planner last counted them (ANALYZE, VACUUM); 0 if it never did. */
export async function plannedChunkRows(db: Database, schema: string = db.schema): Promise<number> {
  const [row] = await db.withSystem((tx) =>
    tx.query<{ rows: number }>(
      `SELECT coalesce(sum(greatest(reltuples, 0)), 0)::float8 AS rows FROM pg_class
       WHERE oid IN (to_regclass($1), to_regclass($2))`,
      [`${schema}.chunks`, `${schema}.chunk_terms`],
    ),
  );
  return row!.rows;
}
