import { DateTime, type BaseContext } from '@jarvis/platform';
import type { UsageService } from './ledger/service.ts';
import type { QuotaService } from './quotas/service.ts';
import type { GroupBy } from './ledger/store.ts';

export interface UsageContext extends BaseContext {
  usage: UsageService;
  quotas: QuotaService;
}

export const resolvers = {
  DateTime,
  Mutation: {
    recordUsage: (_: unknown, args: { input: unknown }, ctx: UsageContext) => ctx.usage.record(args.input),
    recordMeteredRequests: (_: unknown, args: unknown, ctx: UsageContext) => ctx.usage.recordMeteredRequests(args),
    setQuota: (_: unknown, args: { input: unknown }, ctx: UsageContext) => ctx.quotas.setQuota(args.input),
    setMemberAllowance: (_: unknown, args: { input: unknown }, ctx: UsageContext) => ctx.quotas.setMemberAllowance(args.input),
  },
  Tenant: {
    usage: (tenant: { id: string }, args: { period?: unknown; groupBy?: GroupBy | null }, ctx: UsageContext) =>
      ctx.usage.summary(tenant.id, args.period, args.groupBy),
    quota: (tenant: { id: string }, _: unknown, ctx: UsageContext) => ctx.quotas.quota(tenant.id),
  },
  MemberAllowance: {
    user: (allowance: { userId: string; tenantId: string }) => ({ id: allowance.userId, tenant: { id: allowance.tenantId } }),
  },
};
