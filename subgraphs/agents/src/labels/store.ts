import type { Transaction } from '@jarvis/platform/db';

export interface Label {
  tenantId: string;
  definitionId: string;
  name: string;
  version: number;
  movedById: string | null;
  movedAt: Date;
}

export type LabelAction = 'PUBLISH' | 'ROLLBACK';

export interface LabelMove {
  tenantId: string;
  definitionId: string;
  label: string;
  seq: number;
  action: LabelAction;
  fromVersion: number | null;
  toVersion: number;
  movedById: string | null;
  movedAt: Date;
}

const LABEL = `tenant_id AS "tenantId", definition_id AS "definitionId", name, version, moved_by AS "movedById", moved_at AS "movedAt"`;
const MOVE = `tenant_id AS "tenantId", definition_id AS "definitionId", label, seq, action, from_version AS "fromVersion",
  to_version AS "toVersion", moved_by AS "movedById", moved_at AS "movedAt"`;

export function labelsOf(tx: Transaction, definitionIds: string[]): Promise<Label[]> {
  return tx.query<Label>(`SELECT ${LABEL} FROM definition_labels WHERE definition_id = ANY($1::uuid[]) ORDER BY name`, [definitionIds]);
}

export async function labelNamed(tx: Transaction, definitionId: string, name: string): Promise<Label | undefined> {
  const [row] = await tx.query<Label>(`SELECT ${LABEL} FROM definition_labels WHERE definition_id = $1 AND name = $2`, [definitionId, name]);
  return row;
}

export async function saveLabel(tx: Transaction, label: Omit<Label, 'movedAt'>): Promise<Label> {
  const [row] = await tx.query<Label>(
    `INSERT INTO definition_labels (tenant_id, definition_id, name, version, moved_by) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (definition_id, name) DO UPDATE SET version = $4, moved_by = $5, moved_at = now()
     RETURNING ${LABEL}`,
    [label.tenantId, label.definitionId, label.name, label.version, label.movedById],
  );
  return row!;
}

/** Records a move of the label as its next in order. */
export async function recordMove(tx: Transaction, move: Omit<LabelMove, 'seq' | 'movedAt'>): Promise<void> {
  await tx.query(
    `INSERT INTO definition_label_moves (tenant_id, definition_id, label, seq, action, from_version, to_version, moved_by)
     SELECT $1::uuid, $2::uuid, $3::text, coalesce(max(seq), 0) + 1, $4::text, $5::integer, $6::integer, $7::uuid
     FROM definition_label_moves WHERE definition_id = $2 AND label = $3`,
    [move.tenantId, move.definitionId, move.label, move.action, move.fromVersion, move.toVersion, move.movedById],
  );
}

/** The label's moves, newest first; every one without `limit`. */
export function movesOf(tx: Transaction, definitionId: string, label: string, limit: number | null = null): Promise<LabelMove[]> {
  return tx.query<LabelMove>(
    `SELECT ${MOVE} FROM definition_label_moves WHERE definition_id = $1 AND label = $2 ORDER BY seq DESC LIMIT $3`,
    [definitionId, label, limit],
  );
}
