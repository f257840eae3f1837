import { randomUUID } from 'node:crypto';
import { conflict, forbidden, parseInput, requirePermission, requireTenant, type Database, type Principal } from '@jarvis/platform';
import { z } from 'zod';
import * as store from './store.ts';
import { METRICS, type UsageRecord } from './store.ts';

const recordInput = z.object({
  metric: z.enum(METRICS),
  quantity: z.number().finite().nonnegative('must not be negative'),
  idempotencyKey: z.string().min(1, 'must not be empty').max(200, 'at most 200 characters'),
  occurredAt: z.date().nullish(),
  userId: z.uuid('must be a user id').nullish(),
  model: z.string().trim().min(1).max(200).nullish(),
});

/** Usage is recorded by services (API keys with this scope), not by people. */
export const RECORD_SCOPE = 'usage:write';

const MAX_PERIOD_MS = 366 * 24 * 3600 * 1000;
const periodInput = z
  .object({ from: z.date(), to: z.date() })
  .refine((p) => p.from < p.to, { message: 'from must be before to', path: ['from'] })
  .refine((p) => p.to.getTime() - p.from.getTime() <= MAX_PERIOD_MS, { message: 'at most 366 days', path: ['to'] });

type Totals = { metric: string; quantity: number }[];

export interface UsageSummary {
  from: Date;
  to: Date;
  totals: Totals;
  groups: { key: string | null; totals: Totals }[];
}

export class UsageService {
  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
  ) {}

  async record(rawInput: unknown): Promise<UsageRecord> {
    const tenantId = requireTenant(this.principal);
    if (!this.principal.scopes.includes(RECORD_SCOPE)) throw forbidden(`recording usage needs the ${RECORD_SCOPE} scope`);
    const input = parseInput(recordInput, rawInput);
    const event = { ...input, tenantId, id: randomUUID(), occurredAt: input.occurredAt ?? new Date() };
    const stored = await this.db.withTenant(tenantId, (tx) => store.recordOnce(tx, event));
    if (stored.metric !== event.metric || stored.quantity !== event.quantity) {
      throw conflict(`idempotencyKey "${event.idempotencyKey}" was used for a different event`, 'idempotencyKey');
    }
    return stored;
  }

  async summary(tenantId: string, period: unknown, groupBy?: store.GroupBy | null): Promise<UsageSummary> {
    requirePermission(this.principal, 'usage:read');
    const { from, to } = period ? parseInput(periodInput, period) : currentMonth(new Date());
    return this.db.withTenant(tenantId, async (tx) => {
      const totals = everyMetric(await store.totalsBetween(tx, from, to));
      if (!groupBy) return { from, to, totals, groups: [] };
      const rows = await store.totalsByGroup(tx, from, to, groupBy);
      const keys = [...new Set(rows.map((row) => row.key))];
      const groups = keys.map((key) => ({ key, totals: everyMetric(rows.filter((row) => row.key === key)) }));
      return { from, to, totals, groups };
    });
  }
}

/** One total for every metric, zero where nothing was recorded. */
function everyMetric(rows: { metric: string; quantity: number }[]): Totals {
  const byMetric = new Map(rows.map((row) => [row.metric, Number(row.quantity)]));
  return METRICS.map((metric) => ({ metric, quantity: byMetric.get(metric) ?? 0 }));
}

export function currentMonth(now: Date): { from: Date; to: Date } {
  return {
    from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
    to: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
  };
}
