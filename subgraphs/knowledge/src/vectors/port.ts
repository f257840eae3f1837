/** The vector store port: chunk embeddings of the knowledge subgraph, on pgvector or Qdrant. */
import type { TenantIsolation } from '@jarvis/platform/contracts';

export interface ChunkVector {
  /** A UUID, unique across tenants (the service makes it): Qdrant uses it as the point id. */
  id: string;
  tenantId: string;
  /** Where the tenant's data lives (pgvector keeps a DEDICATED tenant's vectors in its own schema); SHARED when absent. */
  isolation?: TenantIsolation;
  knowledgeBaseId: string;
  documentId: string;
  vector: Float32Array;
  /** who may read it beyond the knowledge base: empty = everyone who can read the knowledge base */
  readers?: string[];
}

export interface VectorQuery {
  tenantId: string;
  isolation?: TenantIsolation;
  knowledgeBaseIds: string[];
  vector: Float32Array;
  topK: number;
  /**
   * principals (user id, group ids) for per-document restrictions. Without them only chunks that have no
   * readers are found: a caller who forgets them sees less, never more.
   */
  reader?: string[];
  /** Of `knowledgeBaseIds`, those whose per-document restrictions do not bind the caller (it manages them). */
  unrestrictedKnowledgeBaseIds?: string[];
}

/** `score` is the cosine similarity: higher is closer, 1 is the same direction. */
export interface VectorHit {
  id: string;
  documentId: string;
  knowledgeBaseId: string;
  score: number;
}

export interface VectorStore {
  readonly kind: 'pgvector' | 'qdrant' | 'exact';
  /** Prepares the store for vectors of this many dimensions; idempotent. Call it before anything else. */
  ensureCollection(dimensions: number): Promise<void>;
  /** Inserts chunks, replacing those with the same id. */
  upsert(chunks: ChunkVector[]): Promise<void>;
  /** The `topK` chunks closest to `vector` by cosine, of the tenant's given knowledge bases the reader may see. */
  search(query: VectorQuery): Promise<VectorHit[]>;
  deleteDocument(tenantId: string, documentId: string, isolation?: TenantIsolation): Promise<void>;
  deleteKnowledgeBase(tenantId: string, knowledgeBaseId: string, isolation?: TenantIsolation): Promise<void>;
  close(): Promise<void>;
}

/** Refuses a dimension count before it reaches an engine (pgvector splices it into DDL). */
export function checkDimensionCount(dimensions: number): void {
  if (!Number.isInteger(dimensions) || dimensions < 1) {
    throw new RangeError(`dimensions must be a positive integer, got ${dimensions}`);
  }
}

/**
 * The dimension count a store was prepared for, checked against each vector it is given, so a caller gets
 * the same clear error from every adapter instead of each engine's own.
 */
export class Dimensions {
  private count: number | undefined;

  prepared(dimensions: number): void {
    this.count = dimensions;
  }

  check(vectors: Iterable<Float32Array>): void {
    if (this.count === undefined) throw new Error('call ensureCollection before using the vector store');
    for (const vector of vectors) {
      if (vector.length !== this.count) {
        throw new RangeError(`expected a ${this.count}-dimensional vector, got ${vector.length} dimensions`);
      }
    }
  }
}

export function checkTopK(topK: number): void {
  if (!Number.isInteger(topK) || topK < 1) throw new RangeError(`topK must be a positive integer, got ${topK}`);
}

/** The last chunk of each id, as an engine that applies the batch in order would keep. */
export function lastOfEachId(chunks: ChunkVector[]): ChunkVector[] {
  return [...new Map(chunks.map((chunk) => [chunk.id, chunk])).values()];
}

export function inBatches<T>(items: T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let start = 0; start < items.length; start += size) batches.push(items.slice(start, start + size));
  return batches;
}

/** Chunks as JSON records for `jsonb_to_recordset`, the way the SQL adapters write a batch in one statement. */
export function rowsAsJson(chunks: ChunkVector[], embedding: (vector: Float32Array) => number[]): string {
  return JSON.stringify(
    chunks.map((chunk) => ({
      id: chunk.id,
      tenant_id: chunk.tenantId,
      knowledge_base_id: chunk.knowledgeBaseId,
      document_id: chunk.documentId,
      readers: chunk.readers ?? [],
      embedding: embedding(chunk.vector),
    })),
  );
}
