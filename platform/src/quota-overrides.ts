/**
 * A tenant's own limits below its plan's (usage's setQuota), as the subgraphs that enforce them learn them
 * from `usage.quota.changed`: knowledge the storage limit, chat the token budgets and concurrent streams.
 * Each keeps the latest announcement in its `quota_overrides` table (its migrations create it with the
 * columns below; usage, which decides them, keeps them in a table of that name too); announcements may arrive
 * out of order, so only a later one replaces an earlier one. Members' daily token allowances (usage's
 * setMemberAllowance, `usage.allowance.changed`) reach chat the same way, into its `member_allowances`.
 */
import { enterTenant, type Transaction } from './db/index.ts';
import { PLAN_QUOTAS, type Plan, type Quota } from './plans.ts';
import type { EventSubscription } from './server.ts';
import { ALLOWANCE_TOPIC, allowanceChangedPayload, QUOTA_TOPIC, quotaChangedPayload } from './usage-events.ts';

export type QuotaOverrides = Record<'tokensPerDay' | 'tokensPerMonth' | 'storageBytes' | 'concurrentStreams', number | null>;

/** The plan's quota with the tenant's lower limits in place of the plan's. */
export function effectiveQuota(plan: Quota, overrides: QuotaOverrides): Quota {
  const lower = (own: number | null, planned: number) => (own === null ? planned : Math.min(own, planned));
  return {
    ...plan,
    tokensPerDay: lower(overrides.tokensPerDay, plan.tokensPerDay),
    tokensPerMonth: lower(overrides.tokensPerMonth, plan.tokensPerMonth),
    storageBytes: lower(overrides.storageBytes, plan.storageBytes),
    concurrentStreams: lower(overrides.concurrentStreams, plan.concurrentStreams),
  };
}

/** Keeps the announced overrides in the subscribing subgraph's `quota_overrides`. */
export function quotaOverridesSubscription(group: string): EventSubscription {
  return {
    topic: QUOTA_TOPIC,
    group,
    handle: async (event, { db }) => {
      const { isolation, ...overrides } = quotaChangedPayload.parse(event.payload);
      await enterTenant(db, isolation)(event.tenantId, (tx) => saveQuotaOverrides(tx, event.tenantId, overrides, new Date(event.occurredAt)));
    },
  };
}

async function saveQuotaOverrides(tx: Transaction, tenantId: string, overrides: QuotaOverrides, changedAt: Date): Promise<void> {
  await tx.query(
    `INSERT INTO quota_overrides (tenant_id, tokens_per_day, tokens_per_month, storage_bytes, concurrent_streams, changed_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (tenant_id) DO UPDATE SET tokens_per_day = excluded.tokens_per_day, tokens_per_month = excluded.tokens_per_month,
       storage_bytes = excluded.storage_bytes, concurrent_streams = excluded.concurrent_streams, changed_at = excluded.changed_at
     WHERE quota_overrides.changed_at < excluded.changed_at`,
    [tenantId, overrides.tokensPerDay, overrides.tokensPerMonth, overrides.storageBytes, overrides.concurrentStreams, changedAt],
  );
}

/** The transaction's tenant's own limits from its subgraph's `quota_overrides`; null where it keeps its plan's. */
export async function quotaOverrides(tx: Transaction): Promise<QuotaOverrides> {
  const [row] = await tx.query<QuotaOverrides>(
    `SELECT tokens_per_day::float8 AS "tokensPerDay", tokens_per_month::float8 AS "tokensPerMonth",
       storage_bytes::float8 AS "storageBytes", concurrent_streams::float8 AS "concurrentStreams" FROM quota_overrides`,
  );
  return row ?? { tokensPerDay: null, tokensPerMonth: null, storageBytes: null, concurrentStreams: null };
}

/** The quota in force for the transaction's tenant: its plan's, lowered by what it announced. */
export async function tenantQuota(tx: Transaction, plan: Plan | undefined): Promise<Quota> {
  return effectiveQuota(PLAN_QUOTAS[plan ?? 'FREE'], await quotaOverrides(tx));
}

/**
 * Keeps the announced allowances in the subscribing subgraph's `member_allowances` (tenant_id, user_id,
 * tokens_per_day, changed_at). A removed allowance stays as a row without tokens, so that an older
 * announcement arriving after it cannot bring the allowance back.
 */
export function memberAllowancesSubscription(group: string): EventSubscription {
  return {
    topic: ALLOWANCE_TOPIC,
    group,
    handle: async (event, { db }) => {
      const { isolation, userId, tokensPerDay } = allowanceChangedPayload.parse(event.payload);
      await enterTenant(db, isolation)(event.tenantId, (tx) =>
        tx.query(
          `INSERT INTO member_allowances (tenant_id, user_id, tokens_per_day, changed_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, user_id) DO UPDATE SET tokens_per_day = excluded.tokens_per_day, changed_at = excluded.changed_at
           WHERE member_allowances.changed_at < excluded.changed_at`,
          [event.tenantId, userId, tokensPerDay, new Date(event.occurredAt)],
        ),
      );
    },
  };
}

/** The member's own daily token allowance in the transaction's tenant, as last announced; null when it has none. */
export async function memberAllowance(tx: Transaction, userId: string): Promise<number | null> {
  const [row] = await tx.query<{ tokensPerDay: number | null }>(
    `SELECT tokens_per_day::float8 AS "tokensPerDay" FROM member_allowances WHERE user_id = $1`,
    [userId],
  );
  return row?.tokensPerDay ?? null;
}
