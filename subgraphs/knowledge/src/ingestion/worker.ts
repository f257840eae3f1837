/**
 * The ingestion job: a queued document is extracted, chunked and embedded, its vectors written to the
 * vector store and its chunks and lexical postings to the database, and it becomes READY — or FAILED with a
 * reason. Jobs arrive from the bus at least once; running one twice leaves the same result, because chunk
 * ids derive from the document, its content and the chunk's position, and every write replaces what an
 * earlier run left.
 */
import type { BusEvent } from '@jarvis/platform/bus';
import { TENANT_ISOLATIONS, type TenantIsolation } from '@jarvis/platform/contracts';
import { enterTenant, type Database, type Transaction } from '@jarvis/platform/db';
import { uuidOf } from '@jarvis/platform/ids';
import type { Logger } from '@jarvis/platform/logger';
import { writeEvent } from '@jarvis/platform/outbox';
import type { Embedder } from '@jarvis/platform/text';
import { z } from 'zod';
import { chunksWritten } from '../chunks/statistics.ts';
import * as chunkStore from '../chunks/store.ts';
import * as documents from '../documents/store.ts';
import type { Document } from '../documents/store.ts';
import * as knowledgeBases from '../knowledge-bases/store.ts';
import { storageStored } from '../usage.ts';
import type { VectorStore } from '../vectors/index.ts';
import { chunkText, DEFAULT_CHUNKING, type Chunk } from './chunker.ts';
import type { IngestionMetrics } from './metrics.ts';
import { DocumentRejectedError, extractText } from './extract.ts';

export const INGEST_TOPIC = 'knowledge.document.queued';
export const INGEST_GROUP = 'knowledge-ingestion';
/** Attempts before a document that keeps failing for a passing reason is marked FAILED; below the bus's dead-letter limit. */
export const INGEST_MAX_ATTEMPTS = 3;
/** Texts embedded per call: bounds memory for a large document and the size of a remote embedder's requests. */
const EMBED_BATCH = 64;

const jobPayload = z.object({ documentId: z.uuid(), isolation: z.enum(TENANT_ISOLATIONS) });

export interface IngestionServices {
  db: Database;
  vectors: VectorStore;
  embedder: Embedder;
  log: Logger;
  /** Wakes the outbox relay after a usage event was written. */
  outbox: { notify(): void };
  /** After this long without a sign of life a PROCESSING document counts as lost (sweep.ts); a job shows one well before. */
  staleJobMs: number;
  metrics: IngestionMetrics;
}

/** Queues a document's ingestion, in the transaction that made it PENDING. */
export function queueIngestion(tx: Transaction, doc: Pick<Document, 'id' | 'tenantId'>, isolation: TenantIsolation, id = randomJobId()): Promise<void> {
  const event: BusEvent = {
    id,
    type: INGEST_TOPIC,
    tenantId: doc.tenantId,
    occurredAt: new Date().toISOString(),
    payload: { documentId: doc.id, isolation },
  };
  return writeEvent(tx, INGEST_TOPIC, event);
}

const randomJobId = () => crypto.randomUUID();

export async function ingest(event: BusEvent, services: IngestionServices): Promise<void> {
  const { documentId, isolation } = jobPayload.parse(event.payload);
  const inTenant = <T>(work: (tx: Transaction) => Promise<T>) => enterTenant(services.db, isolation)(event.tenantId, work);
  const job = await inTenant((tx) => claim(tx, documentId, services.staleJobMs));
  if (!job) return;
  const log = services.log.child({ documentId, tenantId: event.tenantId, attempt: job.doc.attempts });
  const heartbeat = setInterval(() => {
    inTenant((tx) => documents.touchProcessing(tx, documentId)).catch((error: unknown) => log.warn({ err: error }, 'could not renew the job'));
  }, services.staleJobMs / 3);
  let rowsWritten: number | undefined;
  try {
    const chunks = await prepare(job, services);
    const vectorOf = new Map(chunks.map((chunk) => [chunk.id, chunk.vector]));
    await services.vectors.deleteDocument(event.tenantId, documentId, isolation);
    await services.vectors.upsert(chunks.map((chunk) => ({ ...chunk, isolation, vector: vectorOf.get(chunk.id)! })));
    rowsWritten = await inTenant((tx) => finish(tx, job, chunks, services.embedder.id, isolation));
    if (rowsWritten === undefined) await services.vectors.deleteDocument(event.tenantId, documentId, isolation);
    else services.outbox.notify();
    log.info({ chunks: chunks.length, ready: rowsWritten !== undefined }, 'document ingested');
    services.metrics.jobs.inc({ outcome: rowsWritten === undefined ? 'superseded' : 'ready' });
  } catch (error) {
    try {
      await inTenant((tx) => recordFailure(tx, job.doc, error, log));
      services.metrics.jobs.inc({ outcome: 'failed' });
    } catch (retry) {
      services.metrics.jobs.inc({ outcome: 'retry' });
      throw retry;
    }
  } finally {
    clearInterval(heartbeat);
  }
  // After the commit, outside the job's transaction; it logs rather than fails.
  if (rowsWritten) await chunksWritten(services.db, log, { tenantId: event.tenantId, isolation, rows: rowsWritten });
}

interface Job {
  doc: Document;
  content: Uint8Array;
  embedder: string | null;
}

/**
 * Marks the document PROCESSING and counts the attempt; nothing to do when it is gone, already finished, or
 * held by a worker that showed a sign of life within `staleJobMs` (a duplicate delivery: if that worker has
 * died, the sweep queues the job again once it is stale). A document whose every allowed attempt began and
 * never ended (the worker died each time) fails here.
 */
async function claim(tx: Transaction, documentId: string, staleJobMs: number): Promise<Job | undefined> {
  const doc = await documents.lockDocument(tx, documentId);
  if (!doc || doc.status === 'READY' || doc.status === 'FAILED') return undefined;
  if (doc.status === 'PROCESSING' && (await documents.heldSince(tx, documentId, staleJobMs))) return undefined;
  if (doc.attempts >= INGEST_MAX_ATTEMPTS) {
    const failureReason = `ingestion stopped unfinished ${doc.attempts} times (did the worker run out of memory?)`;
    await documents.setStatus(tx, documentId, 'FAILED', { failureReason });
    return undefined;
  }
  await knowledgeBases.releaseEmbedderIfEmpty(tx, doc.knowledgeBaseId);
  const [kb] = await knowledgeBases.knowledgeBasesByIds(tx, [doc.knowledgeBaseId], []);
  const processing = await documents.setStatus(tx, documentId, 'PROCESSING', { attempts: 'increment' });
  return { doc: processing!, content: (await documents.documentContent(tx, documentId))!, embedder: kb?.embedder ?? null };
}

/** Vectors of two embedders are not comparable: a knowledge base keeps the one that built it. */
class EmbedderMismatchError extends Error {
  override name = 'EmbedderMismatchError';
}

/** Failures that another attempt would only repeat. */
const isPermanent = (error: unknown) => error instanceof DocumentRejectedError || error instanceof EmbedderMismatchError;

interface PreparedChunk extends chunkStore.StoredChunk {
  vector: Float32Array;
}

async function prepare(job: Job, { embedder }: IngestionServices): Promise<PreparedChunk[]> {
  if (job.embedder && job.embedder !== embedder.id) {
    throw new EmbedderMismatchError(
      `the knowledge base was built with the embedder ${job.embedder}, and this service embeds with ${embedder.id}`,
    );
  }
  const text = await extractText(job.doc.mediaType, job.content);
  const chunks = chunkText(text, DEFAULT_CHUNKING);
  const vectors: Float32Array[] = [];
  for (let start = 0; start < chunks.length; start += EMBED_BATCH) {
    vectors.push(...(await embedder.embed(chunks.slice(start, start + EMBED_BATCH).map(embeddingText(job.doc)))));
  }
  return chunks.map((chunk, i) => storedChunk(job.doc, chunk, vectors[i]!));
}

/** The title and headings travel with each chunk's embedding, so a passage is found by what it is about. */
const embeddingText = (doc: Document) => (chunk: Chunk) => [doc.title, ...chunk.sectionPath, chunk.text].join('\n');

function storedChunk(doc: Document, chunk: Chunk, vector: Float32Array): PreparedChunk {
  return {
    id: chunkId(doc, chunk.index),
    tenantId: doc.tenantId,
    knowledgeBaseId: doc.knowledgeBaseId,
    documentId: doc.id,
    ordinal: chunk.index,
    content: chunk.text,
    sectionPath: chunk.sectionPath,
    startOffset: chunk.start,
    endOffset: chunk.end,
    readers: doc.readers,
    vector,
  };
}

/** The same for every run over the same content, so a repeated job overwrites rather than adds. */
const chunkId = (doc: Document, ordinal: number) => uuidOf(`chunk:${doc.id}:${doc.contentHash}:${ordinal}`);

/**
 * Replaces the document's chunks and marks it READY, its storage reported as usage the first time (usage.ts);
 * returns the chunk and posting rows written, or undefined when the document was deleted meanwhile (its vectors
 * are then the caller's to remove).
 */
async function finish(tx: Transaction, job: Job, chunks: PreparedChunk[], embedder: string, isolation: TenantIsolation): Promise<number | undefined> {
  const doc = await documents.lockDocument(tx, job.doc.id);
  if (!doc) return undefined;
  await chunkStore.deleteChunksOfDocument(tx, doc.id);
  const rowsWritten = await chunkStore.insertChunks(tx, chunks.map(({ vector: _, ...chunk }) => chunk));
  await knowledgeBases.claimEmbedder(tx, doc.knowledgeBaseId, embedder);
  // Before READY and the chunk count are written: the document as it was tells whether its bytes are counted.
  await storageStored(tx, doc, isolation);
  await documents.setStatus(tx, doc.id, 'READY', { chunkCount: chunks.length });
  return rowsWritten;
}

/**
 * A rejected document fails at once, with the rejection as its reason. Anything else may pass: the job is
 * handed back to the bus for another attempt, until the last one, which marks it FAILED.
 */
async function recordFailure(tx: Transaction, doc: Document, error: unknown, log: Logger): Promise<void> {
  if (isPermanent(error)) {
    const failureReason = (error as Error).message;
    log.info({ reason: failureReason }, 'document rejected');
    await documents.setStatus(tx, doc.id, 'FAILED', { failureReason });
    return;
  }
  if (doc.attempts >= INGEST_MAX_ATTEMPTS) {
    log.error({ err: error }, 'document failed on its last attempt');
    const reason = `ingestion failed ${doc.attempts} times; the last error: ${(error as Error).message}`;
    await documents.setStatus(tx, doc.id, 'FAILED', { failureReason: reason });
    return;
  }
  log.warn({ err: error }, 'ingestion failed; the job will be retried');
  throw error;
}
