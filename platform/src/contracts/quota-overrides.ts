import type { Quota } from './plans.ts';

/** A tenant's own limits below its plan's (usage's setQuota); null where it keeps the plan's. */
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
