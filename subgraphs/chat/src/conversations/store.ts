import type { Transaction } from '@jarvis/platform';

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

export function latestConversations(tx: Transaction, limit: number): Promise<Conversation[]> {
  return tx.query<Conversation>(`SELECT ${COLUMNS} FROM conversations ORDER BY created_at DESC, id LIMIT $1`, [limit]);
}
