import type { Transaction } from '@jarvis/platform/db';

export interface Conversation {
  id: string;
  tenantId: string;
  title: string;
  createdById: string | null;
  createdAt: Date;
}

const COLUMNS = `id, tenant_id AS "tenantId", title, created_by AS "createdById", created_at AS "createdAt"`;

export async function insertConversation(
  tx: Transaction,
  conversation: Omit<Conversation, 'createdAt'>,
): Promise<Conversation> {
  const [row] = await tx.query<Conversation>(
    `INSERT INTO conversations (id, tenant_id, title, created_by) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [conversation.id, conversation.tenantId, conversation.title, conversation.createdById],
  );
  return row!;
}

/** The newest conversations `createdById` started (a service account's: those started by none). */
export function latestConversations(tx: Transaction, createdById: string | null, limit: number): Promise<Conversation[]> {
  return tx.query<Conversation>(
    `SELECT ${COLUMNS} FROM conversations WHERE created_by IS NOT DISTINCT FROM $1 ORDER BY created_at DESC, id LIMIT $2`,
    [createdById, limit],
  );
}

export async function conversationOf(tx: Transaction, id: string, createdById: string | null): Promise<Conversation | undefined> {
  const [row] = await tx.query<Conversation>(
    `SELECT ${COLUMNS} FROM conversations WHERE id = $1 AND created_by IS NOT DISTINCT FROM $2`,
    [id, createdById],
  );
  return row;
}
