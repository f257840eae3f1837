/**
 * The replica of a tenant's own limits below its plan's (usage's setQuota) that the subgraphs enforcing them
 * keep, as they learn them from `usage.quota.changed`: knowledge the storage limit, chat the token budgets and
 * concurrent streams. Each keeps the latest announcement in its `quota_overrides` table, which this module's
 * migrations create (usage, which decides the overrides, keeps them in a table of its own of that name and
 * shape); announcements may arrive out of order, so only a later one replaces an earlier one. Members' daily
 * token allowances (usage's setMemberAllowance, `usage.allowance.changed`) reach chat the same way, into its
 * `member_allowances`.
 */
import { fileURLToPath } from 'node:url';
import { enterTenant, type ModuleMigrations, type Transaction } from '../db/index.ts';
import { effectiveQuota, type QuotaOverrides } from '../contracts/quota-overrides.ts';
import { PLAN_QUOTAS, type Plan, type Quota } from '../contracts/plans.ts';
import { ALLOWANCE_TOPIC, allowanceChangedPayload, QUOTA_TOPIC, quotaChangedPayload } from '../contracts/usage-events.ts';
import type { EventSubscription } from '../subgraph/server.ts';

/** The `quota_overrides` table, for each subgraph that keeps the replica to migrate before its own migrations. */
export const QUOTA_OVERRIDES_MIGRATIONS: ModuleMigrations = {
  module: 'quota-overrides',
  dir: fileURLToPath(new URL('./migrations/', import.meta.url)),
};

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

/**
 * The transaction's tenant's own limits from its subgraph's `quota_overrides` (the replica, or usage's own
 * table); null where it keeps its plan's.
 */
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
