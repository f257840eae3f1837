/**
 * The search-latency bench's import, through the knowledge subgraph's own code paths: each synthetic document
 * inserted PENDING as an upload does, then ingested by the ingestion worker (`ingest`), two jobs at a time.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Database } from '@jarvis/platform/db';
import { createServiceMetrics } from '@jarvis/platform/metrics';
import * as documents from '../../subgraphs/knowledge/src/documents/store.ts';
import { ingestionMetrics } from '../../subgraphs/knowledge/src/ingestion/metrics.ts';
import { ingest, INGEST_TOPIC, type IngestionServices } from '../../subgraphs/knowledge/src/ingestion/worker.ts';
import * as knowledgeBases from '../../subgraphs/knowledge/src/knowledge-bases/store.ts';
import { loadAverage } from '../load.ts';
import { syntheticDocuments, type SyntheticDocument, type Vocabulary } from './corpus.ts';
import { progress, thousands } from './report.ts';
import { embedder, log, type Target } from './target.ts';
import { KNOWLEDGE_BASE_IDS, READER, TENANT_ID } from './tenant.ts';

/** The machine has two cores: one job embeds while the other waits on the database. */
const CONCURRENT_JOBS = 2;
const PROGRESS_EVERY = 10_000;

export interface Ingestion {
  documents: number;
  chunks: number;
  wallMs: number;
  /** Chunks/s of each stretch of PROGRESS_EVERY chunks, to see whether writing slows as the indexes grow. */
  stretchRates: number[];
}

export async function createKnowledgeBases(db: Database): Promise<void> {
  await db.withTenant(TENANT_ID, async (tx) => {
    for (const [i, id] of KNOWLEDGE_BASE_IDS.entries()) {
      await knowledgeBases.insertKnowledgeBase(tx, { id, tenantId: TENANT_ID, name: `Synthetic ${i}`, description: null, ownerId: null, memberAccess: 'READ' });
    }
  });
}

/** As an upload does: the document PENDING, then its job, as queueIngestion would have put it on the bus. */
async function uploadAndIngest(target: Target, doc: SyntheticDocument, services: IngestionServices): Promise<void> {
  const content = new TextEncoder().encode(doc.text);
  await target.db.withTenant(TENANT_ID, (tx) =>
    documents.insertDocument(tx, {
      id: doc.id,
      tenantId: TENANT_ID,
      knowledgeBaseId: doc.knowledgeBaseId,
      title: doc.title,
      mediaType: 'text/markdown',
      content,
      contentHash: createHash('sha256').update(content).digest('hex'),
      readers: [],
      createdBy: READER.userId!,
    }),
  );
  const payload = { documentId: doc.id, isolation: 'SHARED' };
  await ingest({ id: randomUUID(), type: INGEST_TOPIC, tenantId: TENANT_ID, occurredAt: new Date().toISOString(), payload }, services);
}

export async function ingestCorpus(target: Target, vocabulary: Vocabulary, chunkCount: number): Promise<Ingestion> {
  const metrics = ingestionMetrics(createServiceMetrics('knowledge'), target.db);
  const services: IngestionServices = { db: target.db, vectors: target.vectors, embedder, log, outbox: { notify() {} }, staleJobMs: 60_000, metrics };
  const queue = syntheticDocuments(vocabulary, chunkCount);
  const ingestion: Ingestion = { documents: 0, chunks: 0, wallMs: 0, stretchRates: [] };
  const started = performance.now();
  let stretch = { chunks: 0, at: started };
  const job = async () => {
    for (let next = queue.next(); !next.done; next = queue.next()) {
      await uploadAndIngest(target, next.value, services);
      ingestion.documents++;
      ingestion.chunks += next.value.chunks;
      if (ingestion.chunks - stretch.chunks >= PROGRESS_EVERY) {
        const now = performance.now();
        ingestion.stretchRates.push(((ingestion.chunks - stretch.chunks) / (now - stretch.at)) * 1000);
        progress(`${target.label}: ${thousands(ingestion.chunks)} chunks, the last ${thousands(ingestion.chunks - stretch.chunks)} at ${ingestion.stretchRates.at(-1)!.toFixed(0)} chunks/s; load ${loadAverage()}`);
        stretch = { chunks: ingestion.chunks, at: now };
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT_JOBS }, job));
  ingestion.wallMs = performance.now() - started;
  await checkAllReady(target.db, ingestion);
  return ingestion;
}

/** The worker records a failure on the document rather than throwing: a FAILED document would go unnoticed. */
async function checkAllReady(db: Database, ingestion: Ingestion): Promise<void> {
  const [row] = await db.withTenant(TENANT_ID, (tx) =>
    tx.query<{ ready: number; chunks: number }>(
      `SELECT count(*) FILTER (WHERE status = 'READY')::integer AS ready, COALESCE(sum(chunk_count), 0)::integer AS chunks FROM documents`,
    ),
  );
  if (row!.ready !== ingestion.documents || row!.chunks !== ingestion.chunks) {
    throw new Error(`${row!.ready} of ${ingestion.documents} documents READY with ${row!.chunks} chunks; expected ${ingestion.chunks}`);
  }
}
