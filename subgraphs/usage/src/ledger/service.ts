import { randomUUID } from 'node:crypto';
import {
  METER_SCOPE,
  requireTenant,
  USAGE_METRICS,
  USAGE_TOPIC,
  usageEvent,
  type Principal,
  type Scope,
} from '@jarvis/platform/contracts';
import { isUniqueViolation, type Database } from '@jarvis/platform/db';
import { conflict, forbidden } from '@jarvis/platform/errors';
import { uuidOf } from '@jarvis/platform/ids';
import { writeEvent } from '@jarvis/platform/outbox';
import { checkInput, parseInput } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { MutationRecordMeteredRequestsArgs, RecordUsageInput, UsageGroupBy, UsagePeriodInput } from '../generated/schema-types.ts';
import * as store from './store.ts';
import { METRICS, type MeterRecord } from './store.ts';

/** What Jarvis measures itself enters the ledger only from its own events: no meter of a tenant's may be called so. */
const SELF_MEASURED = new Set<string>(USAGE_METRICS.map((metric) => metric.toLowerCase()));

const recordChecks = z.object({
  meter: z
    .string()
    .regex(/^[a-z0-9._:-]{1,64}$/, 'lower-case letters, digits and ._:- (at most 64)')
    .refine((meter) => !SELF_MEASURED.has(meter), 'Jarvis measures this itself; name a meter of your own'),
  quantity: z.number().finite().nonnegative('must not be negative'),
  idempotencyKey: z.string().min(1, 'must not be empty').max(200, 'at most 200 characters'),
  userId: z.uuid('must be a user id').nullish(),
  model: z.string().trim().min(1).max(200).nullish(),
});

const meteredInput = z.object({
  quantity: z.number().int().positive('must be positive'),
  idempotencyKey: z.string().min(1, 'must not be empty').max(200, 'at most 200 characters'),
});

/** Usage is recorded by services (API keys with this scope), not by people. */
const RECORD_SCOPE: Scope = 'usage:write';

const MAX_PERIOD_MS = 366 * 24 * 3600 * 1000;
const periodInput = z
  .object({ from: z.date(), to: z.date() })
  .refine((p) => p.from < p.to, { message: 'from must be before to', path: ['from'] })
  .refine((p) => p.to.getTime() - p.from.getTime() <= MAX_PERIOD_MS, { message: 'at most 366 days', path: ['to'] });

type Totals = { metric: string; quantity: number }[];
type Meters = { meter: string; quantity: number }[];

export interface UsageSummary {
  from: Date;
  to: Date;
  totals: Totals;
  meters: Meters;
  groups: { key: string | null; totals: Totals; meters: Meters }[];
}

type Sum = { key: string | null; name: string; quantity: number };

export class UsageService {
  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly outbox: { notify(): void },
  ) {}

  /** A recording of one of the tenant's own meters; the same idempotency key again returns the first. */
  async record(given: RecordUsageInput): Promise<MeterRecord> {
    const tenantId = requireTenant(this.principal);
    if (!this.principal.scopes.includes(RECORD_SCOPE)) throw forbidden(`recording usage needs the ${RECORD_SCOPE} scope`);
    const input = checkInput(recordChecks, given);
    const record: MeterRecord = {
      id: randomUUID(),
      tenantId,
      meter: input.meter,
      quantity: input.quantity,
      idempotencyKey: input.idempotencyKey,
      occurredAt: input.occurredAt ?? new Date(),
      userId: input.userId ?? null,
      model: input.model ?? null,
    };
    const stored = await this.db.withTenant(tenantId, (tx) => store.recordMeterOnce(tx, record));
    if (!sameUsage(stored, record)) {
      throw conflict(`idempotencyKey "${record.idempotencyKey}" was used for a different recording`, 'idempotencyKey');
    }
    return stored;
  }

  /**
   * The requests the gateway metered for the tenant, as a REQUESTS event through the outbox, like every other
   * measurement of Jarvis's own. The event's id derives from the batch's key, so a flush retried after its
   * answer was lost writes nothing more, and the ledger counts the event once.
   */
  async recordMeteredRequests(args: MutationRecordMeteredRequestsArgs): Promise<boolean> {
    const tenantId = requireTenant(this.principal);
    if (!this.principal.scopes.includes(METER_SCOPE)) throw forbidden('only the gateway records the requests it metered');
    const { quantity, idempotencyKey } = parseInput(meteredInput, args);
    const id = uuidOf(`gateway-requests:${tenantId}:${idempotencyKey}`);
    const event = usageEvent(tenantId, { metric: 'REQUESTS', quantity, isolation: this.principal.isolation }, id);
    try {
      await this.db.withTenant(tenantId, (tx) => writeEvent(tx, USAGE_TOPIC, event));
    } catch (error) {
      // The outbox holds the batch's event already (its id is the outbox's key): this is a retried flush.
      if (!isUniqueViolation(error)) throw error;
    }
    this.outbox.notify();
    return true;
  }

  async summary(tenantId: string, period?: UsagePeriodInput | null, groupBy?: UsageGroupBy | null): Promise<UsageSummary> {
    const { from, to } = period ? parseInput(periodInput, period) : currentMonth(new Date());
    return this.db.withTenant(tenantId, async (tx) => {
      const totals = everyMetric(await store.sumsBetween(tx, 'events', from, to));
      const meters = meterTotals(await store.sumsBetween(tx, 'meters', from, to));
      if (!groupBy) return { from, to, totals, meters, groups: [] };
      const events = await store.sumsBetween(tx, 'events', from, to, groupBy);
      const recorded = await store.sumsBetween(tx, 'meters', from, to, groupBy);
      const groups = groupKeys([...events, ...recorded]).map((key) => ({
        key,
        totals: everyMetric(events.filter((row) => row.key === key)),
        meters: meterTotals(recorded.filter((row) => row.key === key)),
      }));
      return { from, to, totals, meters, groups };
    });
  }
}

function sameUsage(stored: MeterRecord, asked: MeterRecord): boolean {
  return stored.meter === asked.meter && stored.quantity === asked.quantity && stored.userId === asked.userId && stored.model === asked.model;
}

/** One total for every metric, zero where nothing was recorded. */
function everyMetric(rows: Sum[]): Totals {
  const byMetric = new Map(rows.map((row) => [row.name, Number(row.quantity)]));
  return METRICS.map((metric) => ({ metric, quantity: byMetric.get(metric) ?? 0 }));
}

/** The meters recorded, by name. */
function meterTotals(rows: Sum[]): Meters {
  return rows.map((row) => ({ meter: row.name, quantity: Number(row.quantity) }));
}

/** Every group key once, in order, the null key (no model, no member) last. */
function groupKeys(rows: Sum[]): (string | null)[] {
  return [...new Set(rows.map((row) => row.key))].sort((a, b) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1));
}

function currentMonth(now: Date): { from: Date; to: Date } {
  return {
    from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
    to: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
  };
}
