import type { Transaction } from '@jarvis/platform';

export interface KnowledgeBase {
  id: string;
  tenantId: string;
  name: string;
  description: string | null;
  createdAt: Date;
}

const COLUMNS = `id, tenant_id AS "tenantId", name, description, created_at AS "createdAt"`;

export async function insertKnowledgeBase(
  tx: Transaction,
  kb: Omit<KnowledgeBase, 'createdAt'>,
): Promise<KnowledgeBase> {
  const [row] = await tx.query<KnowledgeBase>(
    `INSERT INTO knowledge_bases (id, tenant_id, name, description) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [kb.id, kb.tenantId, kb.name, kb.description],
  );
  return row!;
}

/** Knowledge bases of the tenants in scope; row-level security keeps it to the transaction's tenant. */
export function knowledgeBasesOf(tx: Transaction, tenantIds: string[]): Promise<KnowledgeBase[]> {
  return tx.query<KnowledgeBase>(
    `SELECT ${COLUMNS} FROM knowledge_bases WHERE tenant_id = ANY($1::uuid[]) ORDER BY created_at DESC, id`,
    [tenantIds],
  );
}
