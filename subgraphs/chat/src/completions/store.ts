import type { Transaction } from '@jarvis/platform/db';
import type { ToolCall } from '../models/port.ts';

export type CompletionStatus = 'PENDING' | 'DONE';

export interface StoredCompletion {
  tenantId: string;
  idempotencyKey: string;
  status: CompletionStatus;
  /** Who holds a PENDING completion's key: the call making it. */
  claim: string;
  source: string;
  requestedBy: string | null;
  /** The model that answered; null while PENDING. */
  model: string | null;
  content: string | null;
  toolCalls: ToolCall[];
  promptTokens: number;
  completionTokens: number;
  cost: number;
  createdAt: Date;
  completedAt: Date | null;
}

const COLUMNS = `tenant_id AS "tenantId", idempotency_key AS "idempotencyKey", status, claim, source, requested_by AS "requestedBy",
  model, content, tool_calls AS "toolCalls", prompt_tokens AS "promptTokens", completion_tokens AS "completionTokens", cost,
  created_at AS "createdAt", completed_at AS "completedAt"`;

export async function completionByKey(tx: Transaction, idempotencyKey: string): Promise<StoredCompletion | undefined> {
  const [row] = await tx.query<StoredCompletion>(`SELECT ${COLUMNS} FROM completions WHERE idempotency_key = $1`, [idempotencyKey]);
  return row;
}

export interface CompletionClaim {
  tenantId: string;
  idempotencyKey: string;
  claim: string;
  source: string;
  requestedBy: string | null;
}

/**
 * Claims the key for `claim`: a new PENDING row, or a PENDING one untouched for `staleAfterMs` (its holder
 * died). False when the key is taken: DONE, or PENDING with a live holder.
 */
export async function claimCompletion(tx: Transaction, claim: CompletionClaim, staleAfterMs: number): Promise<boolean> {
  const rows = await tx.query(
    `INSERT INTO completions (tenant_id, idempotency_key, status, claim, source, requested_by) VALUES ($1, $2, 'PENDING', $3, $4, $5)
     ON CONFLICT (tenant_id, idempotency_key) DO UPDATE
       SET claim = excluded.claim, source = excluded.source, requested_by = excluded.requested_by, touched_at = clock_timestamp()
       WHERE completions.status = 'PENDING' AND completions.touched_at < clock_timestamp() - $6 * interval '1 millisecond'
     RETURNING claim`,
    [claim.tenantId, claim.idempotencyKey, claim.claim, claim.source, claim.requestedBy, staleAfterMs],
  );
  return rows.length > 0;
}

/** The holder of a PENDING key is alive. */
export async function touchClaim(tx: Transaction, idempotencyKey: string, claim: string): Promise<void> {
  await tx.query(`UPDATE completions SET touched_at = clock_timestamp() WHERE idempotency_key = $1 AND claim = $2 AND status = 'PENDING'`, [
    idempotencyKey,
    claim,
  ]);
}

/** Gives the key up (the call failed): another call may claim it. */
export async function dropClaim(tx: Transaction, idempotencyKey: string, claim: string): Promise<void> {
  await tx.query(`DELETE FROM completions WHERE idempotency_key = $1 AND claim = $2 AND status = 'PENDING'`, [idempotencyKey, claim]);
}

export interface FinishedCompletion {
  model: string;
  content: string | null;
  toolCalls: ToolCall[];
  promptTokens: number;
  completionTokens: number;
  cost: number;
}

/** The completion under the key, DONE; undefined when `claim` no longer holds it (taken over, or finished). */
export async function finishCompletion(
  tx: Transaction,
  idempotencyKey: string,
  claim: string,
  done: FinishedCompletion,
): Promise<StoredCompletion | undefined> {
  const [row] = await tx.query<StoredCompletion>(
    `UPDATE completions SET status = 'DONE', model = $3, content = $4, tool_calls = $5::jsonb, prompt_tokens = $6,
       completion_tokens = $7, cost = $8, completed_at = clock_timestamp(), touched_at = clock_timestamp()
     WHERE idempotency_key = $1 AND claim = $2 AND status = 'PENDING' RETURNING ${COLUMNS}`,
    [idempotencyKey, claim, done.model, done.content, JSON.stringify(done.toolCalls), done.promptTokens, done.completionTokens, done.cost],
  );
  return row;
}
