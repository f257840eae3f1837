import { DateTime, type BaseContext } from '@jarvis/platform';
import type { TenancyService } from './tenants/service.ts';
import type { Tenant, User } from './tenants/store.ts';

export interface TenancyContext extends BaseContext {
  tenancy: TenancyService;
}

type UserReference = { id: string; tenant: { id: string } };

export const resolvers = {
  DateTime,
  Query: {
    me: (_: unknown, __: unknown, ctx: TenancyContext) => {
      const { tenantId, userId } = ctx.principal;
      return tenantId && userId ? ctx.tenancy.user(tenantId, userId) : null;
    },
    tenant: (_: unknown, args: { id: string }, ctx: TenancyContext) => ctx.tenancy.tenant(args.id),
    tenantBySlug: (_: unknown, args: { slug: string }, ctx: TenancyContext) => ctx.tenancy.tenantBySlug(args.slug),
  },
  Mutation: {
    createTenant: (_: unknown, args: { input: unknown }, ctx: TenancyContext) => ctx.tenancy.createTenant(args.input),
  },
  Tenant: {
    __resolveReference: (ref: { id: string }, ctx: TenancyContext) => ctx.tenancy.tenant(ref.id),
    users: (tenant: Tenant, _: unknown, ctx: TenancyContext) => ctx.tenancy.usersOf(tenant.id),
  },
  User: {
    __resolveReference: (ref: UserReference, ctx: TenancyContext) => ctx.tenancy.user(ref.tenant.id, ref.id),
    tenant: (user: User, _: unknown, ctx: TenancyContext) => ctx.tenancy.tenant(user.tenantId),
  },
};
