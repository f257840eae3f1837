import type { Transaction } from '@jarvis/platform/db';

export const MESSAGE_STATUSES = ['STREAMING', 'DONE', 'ERROR', 'CANCELLED'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** A passage an answer cites as [n], with what a citation shows and the ids knowledge resolves. */
export interface StoredCitation {
  n: number;
  passageId: string;
  title: string;
  text: string;
  startOffset: number;
  endOffset: number;
  documentId: string;
  knowledgeBaseId: string;
}

export interface Message {
  id: string;
  tenantId: string;
  conversationId: string;
  role: 'USER' | 'ASSISTANT';
  content: string;
  status: MessageStatus;
  authorId: string | null;
  model: string | null;
  citations: StoredCitation[];
  error: string | null;
  createdAt: Date;
}

const COLUMNS = `id, tenant_id AS "tenantId", conversation_id AS "conversationId", role, content, status,
  author_id AS "authorId", model, citations, error, created_at AS "createdAt"`;

export async function insertMessage(tx: Transaction, message: Omit<Message, 'createdAt' | 'model' | 'citations' | 'error'>): Promise<Message> {
  const [row] = await tx.query<Message>(
    `INSERT INTO messages (id, tenant_id, conversation_id, role, content, status, author_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
    [message.id, message.tenantId, message.conversationId, message.role, message.content, message.status, message.authorId],
  );
  return row!;
}

export function messagesByIds(tx: Transaction, ids: readonly string[]): Promise<Message[]> {
  return tx.query<Message>(`SELECT ${COLUMNS} FROM messages WHERE id = ANY($1::uuid[])`, [ids]);
}

/** The conversation's last `last` messages, oldest first. */
export function messagesOf(tx: Transaction, conversationId: string, last: number): Promise<Message[]> {
  return tx.query<Message>(
    `SELECT * FROM (SELECT ${COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2) AS recent
     ORDER BY "createdAt", id`,
    [conversationId, last],
  );
}

export interface FinishedAnswer {
  content: string;
  status: Exclude<MessageStatus, 'STREAMING'>;
  model: string | null;
  citations: StoredCitation[];
  error: string | null;
}

/** Ends a STREAMING answer; false when it had already ended. */
export async function finishMessage(tx: Transaction, id: string, answer: FinishedAnswer): Promise<boolean> {
  const rows = await tx.query(
    `UPDATE messages SET content = $2, status = $3, model = $4, citations = $5::jsonb, error = $6
     WHERE id = $1 AND status = 'STREAMING' RETURNING id`,
    [id, answer.content, answer.status, answer.model, JSON.stringify(answer.citations), answer.error],
  );
  return rows.length > 0;
}

/** The generator is alive: the sweep leaves the answer alone. */
export async function touchMessage(tx: Transaction, id: string): Promise<void> {
  await tx.query(`UPDATE messages SET touched_at = clock_timestamp() WHERE id = $1 AND status = 'STREAMING'`, [id]);
}
