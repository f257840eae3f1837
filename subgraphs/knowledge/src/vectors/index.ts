import type { Database } from '@jarvis/platform/db';
import { openExactStore } from './exact.ts';
import { openPgvectorStore, VectorStoreUnavailableError } from './pgvector.ts';
import type { VectorStore } from './port.ts';
import { openQdrantStore } from './qdrant.ts';

export type { ChunkVector, VectorHit, VectorQuery, VectorStore } from './port.ts';
export { VectorStoreUnavailableError } from './pgvector.ts';

export interface VectorStoreOptions {
  /** The knowledge subgraph's database, migrated; holds the vectors unless `qdrantUrl` is set. */
  db: Database;
  /** QDRANT_URL */
  qdrantUrl?: string | undefined;
  collection?: string | undefined;
}

export interface OpenedVectorStore extends VectorStore {
  /** Why the vectors are in the exact store rather than in pgvector, for the caller to log; absent otherwise. */
  readonly fallbackReason?: string;
}

export const DEFAULT_COLLECTION = 'jarvis_chunks';

/**
 * Qdrant when a URL is configured; else pgvector in the knowledge schema; else, on a PostgreSQL without
 * pgvector, the exact store in the same schema, which searches by comparing every candidate.
 */
export async function openVectorStore({ db, qdrantUrl, collection = DEFAULT_COLLECTION }: VectorStoreOptions): Promise<OpenedVectorStore> {
  if (qdrantUrl) return openQdrantStore({ url: qdrantUrl, collection });
  try {
    return await openPgvectorStore(db);
  } catch (error) {
    if (!(error instanceof VectorStoreUnavailableError)) throw error;
    return { ...openExactStore(db), fallbackReason: error.message };
  }
}
