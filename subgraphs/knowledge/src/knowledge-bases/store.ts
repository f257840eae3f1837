import type { Transaction } from '@jarvis/platform/db';
import type { AccessLevel, MemberAccess } from './access.ts';

export interface KnowledgeBase {
  id: string;
  tenantId: string;
  name: string;
  description: string | null;
  ownerId: string | null;
  memberAccess: MemberAccess;
  embedder: string | null;
  createdAt: Date;
}

/** A knowledge base with the best level granted to the readers it was looked up for. */
export interface GrantedKnowledgeBase extends KnowledgeBase {
  granted: AccessLevel;
}

export interface Grant {
  knowledgeBaseId: string;
  reader: string;
  level: Exclude<AccessLevel, 'NONE'>;
}

const COLUMNS = `kb.id, kb.tenant_id AS "tenantId", kb.name, kb.description, kb.owner_id AS "ownerId",
  kb.member_access AS "memberAccess", kb.embedder, kb.created_at AS "createdAt"`;

/** The best grant to any of $1 (reader names), NONE without one. */
const GRANTED = `COALESCE((SELECT g.level FROM knowledge_base_grants g
    WHERE g.knowledge_base_id = kb.id AND g.reader = ANY($1::text[])
    ORDER BY array_position(ARRAY['READ', 'WRITE', 'MANAGE'], g.level) DESC LIMIT 1), 'NONE') AS granted`;

export async function insertKnowledgeBase(
  tx: Transaction,
  kb: Omit<KnowledgeBase, 'createdAt' | 'embedder'>,
): Promise<KnowledgeBase> {
  const [row] = await tx.query<KnowledgeBase>(
    `INSERT INTO knowledge_bases AS kb (id, tenant_id, name, description, owner_id, member_access)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
    [kb.id, kb.tenantId, kb.name, kb.description, kb.ownerId, kb.memberAccess],
  );
  return row!;
}

/** Knowledge bases of the tenants in scope; row-level security keeps it to the transaction's tenant. */
export function knowledgeBasesOf(tx: Transaction, tenantIds: string[], readers: string[]): Promise<GrantedKnowledgeBase[]> {
  return tx.query<GrantedKnowledgeBase>(
    `SELECT ${COLUMNS}, ${GRANTED} FROM knowledge_bases kb WHERE kb.tenant_id = ANY($2::uuid[])
     ORDER BY kb.created_at DESC, kb.id`,
    [readers, tenantIds],
  );
}

export function knowledgeBasesByIds(tx: Transaction, ids: string[], readers: string[]): Promise<GrantedKnowledgeBase[]> {
  return tx.query<GrantedKnowledgeBase>(
    `SELECT ${COLUMNS}, ${GRANTED} FROM knowledge_bases kb WHERE kb.id = ANY($2::uuid[])`,
    [readers, ids],
  );
}

export async function lockKnowledgeBase(tx: Transaction, id: string, readers: string[]): Promise<GrantedKnowledgeBase | undefined> {
  const [row] = await tx.query<GrantedKnowledgeBase>(
    `SELECT ${COLUMNS}, ${GRANTED} FROM knowledge_bases kb WHERE kb.id = $2 FOR UPDATE`,
    [readers, id],
  );
  return row;
}

export async function updateKnowledgeBase(
  tx: Transaction,
  id: string,
  changes: { name?: string | undefined; description?: string | null | undefined; memberAccess?: MemberAccess | undefined },
): Promise<void> {
  await tx.query(
    `UPDATE knowledge_bases SET name = COALESCE($2, name),
       description = CASE WHEN $3 THEN $4 ELSE description END, member_access = COALESCE($5, member_access)
     WHERE id = $1`,
    [id, changes.name ?? null, changes.description !== undefined, changes.description ?? null, changes.memberAccess ?? null],
  );
}

/** Records the embedder that built a knowledge base's vectors, the first time; returns the one on record. */
export async function claimEmbedder(tx: Transaction, id: string, embedder: string): Promise<string | null> {
  const [row] = await tx.query<{ embedder: string | null }>(
    `UPDATE knowledge_bases SET embedder = COALESCE(embedder, $2) WHERE id = $1 RETURNING embedder`,
    [id, embedder],
  );
  return row?.embedder ?? null;
}

/** Forgets the embedder of a knowledge base with no READY document left, so the next one may be another. */
export async function releaseEmbedderIfEmpty(tx: Transaction, id: string): Promise<void> {
  await tx.query(
    `UPDATE knowledge_bases kb SET embedder = NULL WHERE kb.id = $1 AND kb.embedder IS NOT NULL
       AND NOT EXISTS (SELECT FROM documents d WHERE d.knowledge_base_id = kb.id AND d.status = 'READY')`,
    [id],
  );
}

export async function deleteKnowledgeBase(tx: Transaction, id: string): Promise<boolean> {
  return (await tx.query(`DELETE FROM knowledge_bases WHERE id = $1 RETURNING id`, [id])).length > 0;
}

export function grantsOf(tx: Transaction, knowledgeBaseIds: string[]): Promise<Grant[]> {
  return tx.query<Grant>(
    `SELECT knowledge_base_id AS "knowledgeBaseId", reader, level FROM knowledge_base_grants
     WHERE knowledge_base_id = ANY($1::uuid[]) ORDER BY created_at, reader`,
    [knowledgeBaseIds],
  );
}

export async function putGrant(tx: Transaction, tenantId: string, grant: Grant): Promise<void> {
  await tx.query(
    `INSERT INTO knowledge_base_grants (knowledge_base_id, tenant_id, reader, level) VALUES ($1, $2, $3, $4)
     ON CONFLICT (knowledge_base_id, reader) DO UPDATE SET level = excluded.level`,
    [grant.knowledgeBaseId, tenantId, grant.reader, grant.level],
  );
}

export async function deleteGrant(tx: Transaction, knowledgeBaseId: string, reader: string): Promise<boolean> {
  const rows = await tx.query(`DELETE FROM knowledge_base_grants WHERE knowledge_base_id = $1 AND reader = $2 RETURNING reader`, [
    knowledgeBaseId,
    reader,
  ]);
  return rows.length > 0;
}
