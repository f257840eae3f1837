import { DateTime } from '@jarvis/platform/subgraph';
import type { Resolvers } from './generated/schema-types.ts';

export const resolvers: Resolvers = {
  DateTime,
  Mutation: {
    recordUsage: (_, { input }, ctx) => ctx.usage.record(input),
    recordMeteredRequests: (_, args, ctx) => ctx.usage.recordMeteredRequests(args),
    setQuota: (_, { input }, ctx) => ctx.quotas.setQuota(input),
    setMemberAllowance: (_, { input }, ctx) => ctx.quotas.setMemberAllowance(input),
  },
  Tenant: {
    usage: (tenant, { period, groupBy }, ctx) => ctx.usage.summary(tenant.id, period, groupBy),
    quota: (tenant, _, ctx) => ctx.quotas.quota(tenant.id),
  },
  MemberAllowance: {
    user: (allowance) => ({ id: allowance.userId, tenant: { id: allowance.tenantId } }),
  },
};
