import { DateTime, type BaseContext } from '@jarvis/platform';
import type { UsageService } from './ledger/service.ts';
import type { GroupBy } from './ledger/store.ts';

export interface UsageContext extends BaseContext {
  usage: UsageService;
}

export const resolvers = {
  DateTime,
  Mutation: {
    recordUsage: (_: unknown, args: { input: unknown }, ctx: UsageContext) => ctx.usage.record(args.input),
  },
  Tenant: {
    usage: (tenant: { id: string }, args: { period?: unknown; groupBy?: GroupBy | null }, ctx: UsageContext) =>
      ctx.usage.summary(tenant.id, args.period, args.groupBy),
  },
};
