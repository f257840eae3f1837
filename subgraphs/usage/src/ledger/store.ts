import { USAGE_METRICS, type UsageMetric } from '@jarvis/platform/contracts';
import type { Transaction } from '@jarvis/platform/db';

export const METRICS = USAGE_METRICS;
export type Metric = UsageMetric;
export type GroupBy = 'DAY' | 'MODEL' | 'USER';

/** A row of the ledger of what Jarvis measures itself: one event from the bus, keyed `event:<its id>`. */
export interface LedgerEvent {
  id: string;
  tenantId: string;
  metric: Metric;
  quantity: number;
  idempotencyKey: string;
  occurredAt: Date;
  model: string | null;
  userId: string | null;
}

/** One recording of a tenant's own meter (recordUsage), keyed by the client's idempotency key. */
export interface MeterRecord {
  id: string;
  tenantId: string;
  meter: string;
  quantity: number;
  idempotencyKey: string;
  occurredAt: Date;
  model: string | null;
  userId: string | null;
}

/** Inserts the event unless its idempotency key was seen; the stored record is unchanged either way. */
export async function recordEventOnce(tx: Transaction, event: LedgerEvent): Promise<void> {
  await tx.query(
    `INSERT INTO usage_events (id, tenant_id, metric, quantity, idempotency_key, occurred_at, model, user_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT ON CONSTRAINT usage_events_idempotency_key DO NOTHING`,
    [event.id, event.tenantId, event.metric, event.quantity, event.idempotencyKey, event.occurredAt, event.model, event.userId],
  );
}

const METER_COLUMNS = `id, tenant_id AS "tenantId", meter, quantity, idempotency_key AS "idempotencyKey",
  occurred_at AS "occurredAt", model, user_id AS "userId"`;

/** Inserts the recording unless its idempotency key was seen; either way returns the stored one. */
export async function recordMeterOnce(tx: Transaction, record: MeterRecord): Promise<MeterRecord> {
  const [inserted] = await tx.query<MeterRecord>(
    `INSERT INTO client_usage (id, tenant_id, meter, quantity, idempotency_key, occurred_at, model, user_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT ON CONSTRAINT client_usage_idempotency_key DO NOTHING
     RETURNING ${METER_COLUMNS}`,
    [record.id, record.tenantId, record.meter, record.quantity, record.idempotencyKey, record.occurredAt, record.model, record.userId],
  );
  if (inserted) return inserted;
  const [existing] = await tx.query<MeterRecord>(`SELECT ${METER_COLUMNS} FROM client_usage WHERE idempotency_key = $1`, [record.idempotencyKey]);
  return existing!;
}

/** Where sums come from: Jarvis's own events per metric, or the tenant's recordings per meter. */
const SOURCES = {
  events: { table: 'usage_events', name: 'metric' },
  meters: { table: 'client_usage', name: 'meter' },
} as const;
export type Source = keyof typeof SOURCES;

const GROUP_KEYS: Record<GroupBy, string> = {
  DAY: `to_char(date_trunc('day', occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')`,
  MODEL: `model`,
  USER: `user_id::text`,
};

/**
 * Sums per metric (events) or meter (recordings) over [from, to); per group too with `by`, where a null key
 * gathers usage with no model or no member (without `by`, every key is null).
 */
export function sumsBetween(tx: Transaction, source: Source, from: Date, to: Date, by?: GroupBy | null) {
  const { table, name } = SOURCES[source];
  return tx.query<{ key: string | null; name: string; quantity: number }>(
    `SELECT ${by ? GROUP_KEYS[by] : 'NULL::text'} AS key, ${name} AS name, sum(quantity)::float8 AS quantity FROM ${table}
     WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2`,
    [from, to],
  );
}
