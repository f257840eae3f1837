import { USAGE_METRICS, type Transaction, type UsageMetric } from '@jarvis/platform';

export const METRICS = USAGE_METRICS;
export type Metric = UsageMetric;
export type GroupBy = 'DAY' | 'MODEL' | 'USER';

export interface UsageRecord {
  id: string;
  tenantId: string;
  metric: Metric;
  quantity: number;
  idempotencyKey: string;
  occurredAt: Date;
  model?: string | null;
  userId?: string | null;
}

const COLUMNS = `id, tenant_id AS "tenantId", metric, quantity, idempotency_key AS "idempotencyKey", occurred_at AS "occurredAt"`;

/** Inserts the event unless its idempotency key was seen; either way returns the stored record. */
export async function recordOnce(tx: Transaction, event: UsageRecord): Promise<UsageRecord> {
  const [inserted] = await tx.query<UsageRecord>(
    `INSERT INTO usage_events (id, tenant_id, metric, quantity, idempotency_key, occurred_at, model, user_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT ON CONSTRAINT usage_events_idempotency_key DO NOTHING
     RETURNING ${COLUMNS}`,
    [event.id, event.tenantId, event.metric, event.quantity, event.idempotencyKey, event.occurredAt, event.model ?? null, event.userId ?? null],
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

const GROUP_KEYS: Record<GroupBy, string> = {
  DAY: `to_char(date_trunc('day', occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')`,
  MODEL: `model`,
  USER: `user_id::text`,
};

/** Totals per group and metric; a null key gathers usage with no model or no member. */
export function totalsByGroup(tx: Transaction, from: Date, to: Date, by: GroupBy) {
  return tx.query<{ key: string | null; metric: Metric; quantity: number }>(
    `SELECT ${GROUP_KEYS[by]} AS key, metric, sum(quantity) AS quantity FROM usage_events
     WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2`,
    [from, to],
  );
}
