import { DateTime, PERMISSIONS, requireTenant, type BaseContext } from '@jarvis/platform';
import type { AccessService, Credentials } from './access/service.ts';
import type { IssuerService } from './issuers/service.ts';
import type { TrustedIssuer } from './issuers/store.ts';
import type { Group, RoleAssignment, ServiceAccount } from './access/store.ts';
import type { TenancyService } from './tenants/service.ts';
import type { AuditEvent, Tenant, User } from './tenants/store.ts';

export interface TenancyContext extends BaseContext {
  tenancy: TenancyService;
  access: AccessService;
  credentials: Credentials;
  issuers: IssuerService;
}

type UserReference = { id: string; tenant: { id: string } };
type Args<T> = { input: T };

export const resolvers = {
  DateTime,
  Query: {
    me: (_: unknown, __: unknown, ctx: TenancyContext) => {
      const { tenantId, userId } = ctx.principal;
      return tenantId && userId ? ctx.tenancy.user(tenantId, userId) : null;
    },
    tenant: (_: unknown, __: unknown, ctx: TenancyContext) => ctx.tenancy.tenant(requireTenant(ctx.principal)),
    permissions: () => Object.entries(PERMISSIONS).map(([name, description]) => ({ name, description })),
  },
  Mutation: {
    createTenant: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.tenancy.createTenant(args.input, ctx.principal),
    changeTenantPlan: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.tenancy.changePlan(args.input, ctx.principal),
    acceptInvitation: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.credentials.acceptInvitation(args.input),
    createRole: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.access.createRole(args.input),
    deleteRole: (_: unknown, args: { name: string }, ctx: TenancyContext) => ctx.access.deleteRole(args.name),
    assignRole: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.access.assignRole(args.input),
    revokeRole: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.access.revokeRole(args.input),
    removeMember: (_: unknown, args: { userId: string }, ctx: TenancyContext) => ctx.access.removeMember(args.userId),
    createGroup: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.access.createGroup(args.input),
    deleteGroup: (_: unknown, args: { id: string }, ctx: TenancyContext) => ctx.access.deleteGroup(args.id),
    addGroupMember: (_: unknown, args: { groupId: string; userId: string }, ctx: TenancyContext) =>
      ctx.access.changeGroupMembership(args.groupId, args.userId, 'add'),
    removeGroupMember: (_: unknown, args: { groupId: string; userId: string }, ctx: TenancyContext) =>
      ctx.access.changeGroupMembership(args.groupId, args.userId, 'remove'),
    inviteUser: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.access.inviteUser(args.input),
    createServiceAccount: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.access.createServiceAccount(args.input),
    createApiKey: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.access.createApiKey(args.input),
    revokeApiKey: (_: unknown, args: { id: string }, ctx: TenancyContext) => ctx.access.revokeApiKey(args.id),
    addTrustedIssuer: (_: unknown, args: Args<unknown>, ctx: TenancyContext) => ctx.issuers.add(args.input),
    removeTrustedIssuer: (_: unknown, args: { id: string }, ctx: TenancyContext) => ctx.issuers.remove(args.id),
  },
  Tenant: {
    __resolveReference: (ref: { id: string }, ctx: TenancyContext) => ctx.tenancy.tenant(ref.id),
    users: (tenant: Tenant, _: unknown, ctx: TenancyContext) => ctx.tenancy.usersOf(tenant.id),
    groups: (tenant: Tenant, _: unknown, ctx: TenancyContext) => ctx.access.groups(tenant.id),
    roles: (tenant: Tenant, _: unknown, ctx: TenancyContext) => ctx.access.roles(tenant.id),
    serviceAccounts: (tenant: Tenant, _: unknown, ctx: TenancyContext) => ctx.access.serviceAccounts(tenant.id),
    invitations: (tenant: Tenant, _: unknown, ctx: TenancyContext) => ctx.access.invitations(tenant.id),
    trustedIssuers: (tenant: Tenant, _: unknown, ctx: TenancyContext) => ctx.issuers.list(tenant.id),
    auditEvents: (tenant: Tenant, _: unknown, ctx: TenancyContext) => ctx.tenancy.auditEvents(tenant.id),
  },
  User: {
    __resolveReference: (ref: UserReference, ctx: TenancyContext) => ctx.tenancy.user(ref.tenant.id, ref.id),
    tenant: (user: User, _: unknown, ctx: TenancyContext) => ctx.tenancy.tenant(user.tenantId),
    roles: (user: User, _: unknown, ctx: TenancyContext) => ctx.access.rolesOfUser(user),
    groups: (user: User, _: unknown, ctx: TenancyContext) => ctx.access.groupsOfUser(user),
    permissions: async (user: User, _: unknown, ctx: TenancyContext) =>
      (await ctx.access.accessOfUser(user.tenantId, user.id)).permissions,
  },
  Group: {
    members: (group: Group, _: unknown, ctx: TenancyContext) => ctx.access.membersOfGroup(group),
    roles: (group: Group, _: unknown, ctx: TenancyContext) => ctx.access.rolesOfGroup(group),
  },
  ServiceAccount: {
    roles: (account: ServiceAccount, _: unknown, ctx: TenancyContext) => ctx.access.rolesOfServiceAccount(account),
    apiKeys: (account: ServiceAccount, _: unknown, ctx: TenancyContext) => ctx.access.apiKeysOf(account),
  },
  AuditEvent: {
    detail: (event: AuditEvent) => JSON.stringify(event.detail),
  },
  TrustedIssuer: {
    roleMapping: (trusted: TrustedIssuer) => Object.entries(trusted.roleMapping).map(([value, role]) => ({ value, role })),
  },
  RoleAssignment: {
    user: (a: RoleAssignment, _: unknown, ctx: TenancyContext) => (a.userId ? ctx.tenancy.user(requireTenant(ctx.principal), a.userId) : null),
    group: (a: RoleAssignment, _: unknown, ctx: TenancyContext) => (a.groupId ? ctx.access.group(a.groupId) : null),
    serviceAccount: (a: RoleAssignment, _: unknown, ctx: TenancyContext) =>
      a.serviceAccountId ? ctx.access.serviceAccount(a.serviceAccountId) : null,
  },
};
