import type { Transaction } from '@jarvis/platform';

export const METRICS = ['REQUESTS', 'PROMPT_TOKENS', 'COMPLETION_TOKENS', 'STORAGE_BYTES'] as const;
export type Metric = (typeof METRICS)[number];

export interface UsageRecord {
  id: string;
  tenantId: string;
  metric: Metric;
  quantity: number;
  idempotencyKey: string;
  occurredAt: Date;
}

const COLUMNS = `id, tenant_id AS "tenantId", metric, quantity, idempotency_key AS "idempotencyKey", occurred_at AS "occurredAt"`;

/** Inserts the event unless its idempotency key was seen; either way returns the stored record. */
export async function recordOnce(tx: Transaction, event: UsageRecord): Promise<UsageRecord> {
  const [inserted] = await tx.query<UsageRecord>(
    `INSERT INTO usage_events (id, tenant_id, metric, quantity, idempotency_key, occurred_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT ON CONSTRAINT usage_events_idempotency_key DO NOTHING
     RETURNING ${COLUMNS}`,
    [event.id, event.tenantId, event.metric, event.quantity, event.idempotencyKey, event.occurredAt],
  );
  if (inserted) return inserted;
  const [existing] = await tx.query<UsageRecord>(`SELECT ${COLUMNS} FROM usage_events WHERE idempotency_key = $1`, [
    event.idempotencyKey,
  ]);
  return existing!;
}

export function totalsBetween(tx: Transaction, from: Date, to: Date): Promise<{ metric: Metric; quantity: number }[]> {
  return tx.query(
    `SELECT metric, sum(quantity) AS quantity FROM usage_events
     WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY metric`,
    [from, to],
  );
}
