import type { QuotaOverrides } from '@jarvis/platform/contracts';
import type { Transaction } from '@jarvis/platform/db';

export interface MemberAllowance {
  tenantId: string;
  userId: string;
  tokensPerDay: number;
}

export async function saveOverrides(tx: Transaction, tenantId: string, values: QuotaOverrides): Promise<void> {
  await tx.query(
    `INSERT INTO quota_overrides (tenant_id, tokens_per_day, tokens_per_month, storage_bytes, concurrent_streams)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (tenant_id) DO UPDATE SET tokens_per_day = $2, tokens_per_month = $3, storage_bytes = $4,
       concurrent_streams = $5, updated_at = now()`,
    [tenantId, values.tokensPerDay, values.tokensPerMonth, values.storageBytes, values.concurrentStreams],
  );
}

export function allowances(tx: Transaction): Promise<MemberAllowance[]> {
  return tx.query<MemberAllowance>(
    `SELECT tenant_id AS "tenantId", user_id AS "userId", tokens_per_day AS "tokensPerDay" FROM member_allowances ORDER BY user_id`,
  );
}

export async function saveAllowance(tx: Transaction, allowance: MemberAllowance): Promise<void> {
  await tx.query(
    `INSERT INTO member_allowances (tenant_id, user_id, tokens_per_day) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id, user_id) DO UPDATE SET tokens_per_day = $3, updated_at = now()`,
    [allowance.tenantId, allowance.userId, allowance.tokensPerDay],
  );
}

export async function removeAllowance(tx: Transaction, userId: string): Promise<void> {
  await tx.query(`DELETE FROM member_allowances WHERE user_id = $1`, [userId]);
}

/** Model tokens since `since`, per member where `byMember`, else for the whole tenant (key null). */
export function tokensSince(tx: Transaction, since: Date) {
  return tx.query<{ userId: string | null; tokens: number }>(
    `SELECT user_id AS "userId", sum(quantity)::float AS tokens FROM usage_events
     WHERE metric IN ('PROMPT_TOKENS', 'COMPLETION_TOKENS') AND occurred_at >= $1 GROUP BY user_id`,
    [since],
  );
}

/**
 * Bytes the tenant stores: documents' bytes counted when stored, less those released when deleted (negative
 * STORAGE_BYTES events). Never below zero, even while a release has arrived before the count it undoes.
 */
export async function storageRecorded(tx: Transaction): Promise<number> {
  const [row] = await tx.query<{ bytes: number }>(
    `SELECT greatest(coalesce(sum(quantity), 0), 0)::float AS bytes FROM usage_events WHERE metric = 'STORAGE_BYTES'`,
  );
  return row!.bytes;
}
