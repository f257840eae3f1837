import type { Database } from '@jarvis/platform';
import { openPgvectorStore } from './pgvector.ts';
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

export const DEFAULT_COLLECTION = 'jarvis_chunks';

/** Qdrant when a URL is configured, pgvector in the knowledge schema otherwise. */
export function openVectorStore({ db, qdrantUrl, collection = DEFAULT_COLLECTION }: VectorStoreOptions): Promise<VectorStore> {
  if (qdrantUrl) return Promise.resolve(openQdrantStore({ url: qdrantUrl, collection }));
  return openPgvectorStore(db);
}
