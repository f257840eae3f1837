import { randomUUID } from 'node:crypto';
import { conflict, parseInput, type Database } from '@jarvis/platform';
import { z } from 'zod';
import * as store from './store.ts';
import { METRICS, type UsageRecord } from './store.ts';

const recordInput = z.object({
  tenantId: z.uuid('must be a tenant id'),
  metric: z.enum(METRICS),
  quantity: z.number().finite().nonnegative('must not be negative'),
  idempotencyKey: z.string().min(1, 'must not be empty').max(200, 'at most 200 characters'),
  occurredAt: z.date().nullish(),
});

const MAX_PERIOD_MS = 366 * 24 * 3600 * 1000;
const periodInput = z
  .object({ from: z.date(), to: z.date() })
  .refine((p) => p.from < p.to, { message: 'from must be before to', path: ['from'] })
  .refine((p) => p.to.getTime() - p.from.getTime() <= MAX_PERIOD_MS, { message: 'at most 366 days', path: ['to'] });

export interface UsageSummary {
  from: Date;
  to: Date;
  totals: { metric: string; quantity: number }[];
}

export class UsageService {
  constructor(private readonly db: Database) {}

  async record(rawInput: unknown): Promise<UsageRecord> {
    const input = parseInput(recordInput, rawInput);
    const event = { ...input, id: randomUUID(), occurredAt: input.occurredAt ?? new Date() };
    const stored = await this.db.withTenant(input.tenantId, (tx) => store.recordOnce(tx, event));
    if (stored.metric !== event.metric || stored.quantity !== event.quantity) {
      throw conflict(`idempotencyKey "${event.idempotencyKey}" was used for a different event`, 'idempotencyKey');
    }
    return stored;
  }

  async summary(tenantId: string, period: unknown): Promise<UsageSummary> {
    const { from, to } = period ? parseInput(periodInput, period) : currentMonth(new Date());
    const rows = await this.db.withTenant(tenantId, (tx) => store.totalsBetween(tx, from, to));
    const byMetric = new Map(rows.map((row) => [row.metric, Number(row.quantity)]));
    return { from, to, totals: METRICS.map((metric) => ({ metric, quantity: byMetric.get(metric) ?? 0 })) };
  }
}

export function currentMonth(now: Date): { from: Date; to: Date } {
  return {
    from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
    to: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
  };
}
