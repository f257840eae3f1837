import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import {
  checkDimensionCount,
  checkTopK,
  Dimensions,
  inBatches,
  lastOfEachId,
  type ChunkVector,
  type VectorHit,
  type VectorQuery,
  type VectorStore,
} from './port.ts';

export interface QdrantOptions {
  url: string;
  /** One collection holds every tenant's chunks of a deployment. */
  collection: string;
}

// A type, not an interface, so it is assignable to the client's `Record<string, unknown>` payload.
type ChunkPayload = {
  tenant_id: string;
  knowledge_base_id: string;
  document_id: string;
  readers: string[];
};

// Qdrant refuses requests over 32 MB; 128 points of 4,096 dimensions stay well below.
const POINTS_PER_UPSERT = 128;

/**
 * Chunk vectors in one Qdrant collection. Qdrant has no row-level security, so the tenant is a filter this
 * adapter adds to every search and delete; no method takes a filter from its caller.
 */
export function openQdrantStore({ url, collection }: QdrantOptions): VectorStore {
  // The version check only warns on the console, and Qdrant 1.13 (docker-compose) is older than it accepts.
  const client = new QdrantClient({ url, checkCompatibility: false });
  const dimensions = new Dimensions();

  return {
    kind: 'qdrant',
    async ensureCollection(count) {
      checkDimensionCount(count);
      await ensureVectors(client, collection, count);
      await indexPayload(client, collection);
      dimensions.prepared(count);
    },
    async upsert(chunks) {
      dimensions.check(chunks.map((chunk) => chunk.vector));
      for (const batch of inBatches(lastOfEachId(chunks), POINTS_PER_UPSERT)) {
        await client.upsert(collection, { wait: true, points: batch.map(asPoint) });
      }
    },
    async search(query) {
      dimensions.check([query.vector]);
      checkTopK(query.topK);
      if (query.knowledgeBaseIds.length === 0) return [];
      const { points } = await client.query(collection, {
        query: Array.from(query.vector),
        filter: searchFilter(query),
        limit: query.topK,
        with_payload: ['document_id', 'knowledge_base_id'],
      });
      return points.map(asHit);
    },
    async deleteDocument(tenantId, documentId) {
      await client.delete(collection, { wait: true, filter: { must: [ofTenant(tenantId), matches('document_id', documentId)] } });
    },
    async deleteKnowledgeBase(tenantId, knowledgeBaseId) {
      await client.delete(collection, {
        wait: true,
        filter: { must: [ofTenant(tenantId), matches('knowledge_base_id', knowledgeBaseId)] },
      });
    },
    // The client keeps no state to release; its idle connections time out on their own.
    close: async () => {},
  };
}

async function ensureVectors(client: QdrantClient, collection: string, dimensions: number): Promise<void> {
  if (!(await client.collectionExists(collection)).exists) {
    try {
      await client.createCollection(collection, { vectors: { size: dimensions, distance: 'Cosine' } });
      return;
    } catch (error) {
      // Another replica created it first; its vector size is checked below like any existing collection's.
      if (!(await client.collectionExists(collection)).exists) throw error;
    }
  }
  const size = vectorSize(await client.getCollection(collection));
  if (size !== dimensions) {
    throw new Error(`the Qdrant collection "${collection}" holds ${size}-dimensional vectors, not ${dimensions}`);
  }
}

function vectorSize(info: Schemas['CollectionInfo']): number | undefined {
  const vectors = info.config.params.vectors;
  return vectors && 'size' in vectors ? Number(vectors.size) : undefined;
}

/** Creating an index that exists is a no-op in Qdrant, so this runs on every start. */
async function indexPayload(client: QdrantClient, collection: string): Promise<void> {
  // is_tenant lays points out by tenant on disk, which keeps each tenant's searches fast.
  await client.createPayloadIndex(collection, {
    wait: true,
    field_name: 'tenant_id',
    field_schema: { type: 'keyword', is_tenant: true },
  });
  for (const field of ['knowledge_base_id', 'document_id', 'readers']) {
    await client.createPayloadIndex(collection, { wait: true, field_name: field, field_schema: 'keyword' });
  }
}

function asPoint(chunk: ChunkVector): Schemas['PointStruct'] {
  const payload: ChunkPayload = {
    tenant_id: chunk.tenantId,
    knowledge_base_id: chunk.knowledgeBaseId,
    document_id: chunk.documentId,
    readers: chunk.readers ?? [],
  };
  return { id: chunk.id, vector: Array.from(chunk.vector), payload };
}

function asHit(point: Schemas['ScoredPoint']): VectorHit {
  const payload = point.payload as Pick<ChunkPayload, 'document_id' | 'knowledge_base_id'>;
  return {
    id: String(point.id),
    documentId: payload.document_id,
    knowledgeBaseId: payload.knowledge_base_id,
    score: point.score,
  };
}

function searchFilter(query: VectorQuery): Schemas['Filter'] {
  const mayRead: Schemas['Condition'][] = [{ is_empty: { key: 'readers' } }];
  if (query.reader?.length) mayRead.push({ key: 'readers', match: { any: query.reader } });
  if (query.unrestrictedKnowledgeBaseIds?.length) {
    mayRead.push({ key: 'knowledge_base_id', match: { any: query.unrestrictedKnowledgeBaseIds } });
  }
  return {
    must: [ofTenant(query.tenantId), { key: 'knowledge_base_id', match: { any: query.knowledgeBaseIds } }, { should: mayRead }],
  };
}

function ofTenant(tenantId: string): Schemas['FieldCondition'] {
  return matches('tenant_id', tenantId);
}

function matches(key: keyof ChunkPayload, value: string): Schemas['FieldCondition'] {
  return { key, match: { value } };
}
