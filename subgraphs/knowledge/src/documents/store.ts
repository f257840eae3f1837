import type { Transaction } from '@jarvis/platform/db';

export const DOCUMENT_STATUSES = ['PENDING', 'PROCESSING', 'READY', 'FAILED'] as const;
export type DocumentStatus = (typeof DOCUMENT_STATUSES)[number];

export interface Document {
  id: string;
  tenantId: string;
  knowledgeBaseId: string;
  title: string;
  mediaType: string;
  contentHash: string;
  byteSize: number;
  readers: string[];
  status: DocumentStatus;
  failureReason: string | null;
  attempts: number;
  chunkCount: number;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewDocument {
  id: string;
  tenantId: string;
  knowledgeBaseId: string;
  title: string;
  mediaType: string;
  content: Uint8Array;
  contentHash: string;
  readers: string[];
  createdBy: string | null;
}

const COLUMNS = `id, tenant_id AS "tenantId", knowledge_base_id AS "knowledgeBaseId", title, media_type AS "mediaType",
  content_hash AS "contentHash", byte_size::float8 AS "byteSize", readers, status, failure_reason AS "failureReason",
  attempts, chunk_count AS "chunkCount", created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Visible to a reader set: unrestricted, naming one of the readers, or in a knowledge base it manages ($unrestricted). */
const READABLE = (readers: string, unrestricted: string) =>
  `(readers = '{}' OR readers && ${readers}::text[] OR knowledge_base_id = ANY(${unrestricted}::uuid[]))`;

/** Inserts the document, or returns undefined when the knowledge base holds the same content already. */
export async function insertDocument(tx: Transaction, doc: NewDocument): Promise<Document | undefined> {
  const [row] = await tx.query<Document>(
    `INSERT INTO documents (id, tenant_id, knowledge_base_id, title, media_type, content, content_hash, byte_size, readers, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT ON CONSTRAINT documents_content_key DO NOTHING RETURNING ${COLUMNS}`,
    [doc.id, doc.tenantId, doc.knowledgeBaseId, doc.title, doc.mediaType, doc.content, doc.contentHash, doc.content.byteLength, doc.readers, doc.createdBy],
  );
  return row;
}

export async function documentByContent(tx: Transaction, knowledgeBaseId: string, contentHash: string): Promise<Document | undefined> {
  const [row] = await tx.query<Document>(
    `SELECT ${COLUMNS} FROM documents WHERE knowledge_base_id = $1 AND content_hash = $2`,
    [knowledgeBaseId, contentHash],
  );
  return row;
}

export function documentsByIds(tx: Transaction, ids: string[]): Promise<Document[]> {
  return tx.query<Document>(`SELECT ${COLUMNS} FROM documents WHERE id = ANY($1::uuid[])`, [ids]);
}

export interface DocumentFilter {
  knowledgeBaseIds: string[];
  readers: string[];
  /** Knowledge bases whose document restrictions do not bind the caller. */
  unrestricted: string[];
  status?: DocumentStatus | null | undefined;
  first: number;
}

/** The newest `first` documents of each knowledge base the reader may see. */
export function documentsOf(tx: Transaction, filter: DocumentFilter): Promise<Document[]> {
  return tx.query<Document>(
    `SELECT * FROM (
       SELECT ${COLUMNS}, row_number() OVER (PARTITION BY knowledge_base_id ORDER BY created_at DESC, id) AS position
       FROM documents
       WHERE knowledge_base_id = ANY($1::uuid[]) AND ${READABLE('$2', '$3')} AND ($4::text IS NULL OR status = $4)
     ) ranked WHERE position <= $5 ORDER BY "createdAt" DESC, id`,
    [filter.knowledgeBaseIds, filter.readers, filter.unrestricted, filter.status ?? null, filter.first],
  );
}

/** Locks a document for a change of status; undefined when it is gone. */
export async function lockDocument(tx: Transaction, id: string): Promise<Document | undefined> {
  const [row] = await tx.query<Document>(`SELECT ${COLUMNS} FROM documents WHERE id = $1 FOR UPDATE`, [id]);
  return row;
}

export async function documentContent(tx: Transaction, id: string): Promise<Uint8Array | undefined> {
  const [row] = await tx.query<{ content: Uint8Array }>(`SELECT content FROM documents WHERE id = $1`, [id]);
  return row?.content;
}

export async function setStatus(
  tx: Transaction,
  id: string,
  status: DocumentStatus,
  details: { failureReason?: string | null; chunkCount?: number; attempts?: 'reset' | 'increment' } = {},
): Promise<Document | undefined> {
  const [row] = await tx.query<Document>(
    `UPDATE documents SET status = $2, failure_reason = $3, chunk_count = COALESCE($4, chunk_count),
       attempts = CASE $5 WHEN 'reset' THEN 0 WHEN 'increment' THEN attempts + 1 ELSE attempts END, updated_at = now()
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, status, details.failureReason ?? null, details.chunkCount ?? null, details.attempts ?? null],
  );
  return row;
}

export async function deleteDocument(tx: Transaction, id: string): Promise<Document | undefined> {
  const [row] = await tx.query<Document>(`DELETE FROM documents WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
  return row;
}

/** Deletes a knowledge base's documents (passages go with them), returning the rows as they were. */
export function deleteDocumentsOf(tx: Transaction, knowledgeBaseId: string): Promise<Document[]> {
  return tx.query<Document>(`DELETE FROM documents WHERE knowledge_base_id = $1 RETURNING ${COLUMNS}`, [knowledgeBaseId]);
}

/** Bytes of content the transaction's tenant keeps. */
export async function storedBytes(tx: Transaction): Promise<number> {
  const [row] = await tx.query<{ bytes: number }>(`SELECT COALESCE(sum(byte_size), 0)::float8 AS bytes FROM documents`);
  return row!.bytes;
}

/** Documents still queued or in progress that nobody has touched since `olderThanMs`: their job may be lost. */
export function staleUnfinished(tx: Transaction, schema: string, olderThanMs: number, limit: number) {
  return tx.query<{ id: string; tenantId: string; knowledgeBaseId: string }>(
    `SELECT id, tenant_id AS "tenantId", knowledge_base_id AS "knowledgeBaseId" FROM ${schema}.documents
     WHERE status IN ('PENDING', 'PROCESSING') AND updated_at < now() - $1 * interval '1 millisecond'
     ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [olderThanMs, limit],
  );
}

/** How many of the schema's documents wait for ingestion (PENDING) or are being ingested (PROCESSING). */
export function unfinishedCounts(tx: Transaction, schema: string) {
  return tx.query<{ status: 'PENDING' | 'PROCESSING'; count: number }>(
    `SELECT status, count(*)::int AS count FROM ${schema}.documents WHERE status IN ('PENDING', 'PROCESSING') GROUP BY status`,
  );
}

/** Whether a worker has touched the PROCESSING document within the last `withinMs` (by the database's clock). */
export async function heldSince(tx: Transaction, id: string, withinMs: number): Promise<boolean> {
  const [row] = await tx.query<{ held: boolean }>(
    `SELECT updated_at > now() - $2 * interval '1 millisecond' AS held FROM documents WHERE id = $1`,
    [id, withinMs],
  );
  return row?.held ?? false;
}

/** A worker still on the job says so, so the sweep does not take the document for lost. */
export async function touchProcessing(tx: Transaction, id: string): Promise<void> {
  await tx.query(`UPDATE documents SET updated_at = now() WHERE id = $1 AND status = 'PROCESSING'`, [id]);
}

/** Back to PENDING, as just queued: the next worker may claim them, and the sweep leaves them be until they are stale again. */
export async function requeue(tx: Transaction, schema: string, ids: string[]): Promise<void> {
  await tx.query(`UPDATE ${schema}.documents SET status = 'PENDING', updated_at = now() WHERE id = ANY($1::uuid[])`, [ids]);
}
