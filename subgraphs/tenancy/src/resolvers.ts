import { PERMISSIONS, requireTenant } from '@jarvis/platform/contracts';
import { DateTime } from '@jarvis/platform/subgraph';
import type { Resolvers } from './generated/schema-types.ts';

export const resolvers: Resolvers = {
  DateTime,
  Query: {
    me: (_, __, ctx) => {
      const { tenantId, userId } = ctx.principal;
      return tenantId && userId ? ctx.tenancy.user(tenantId, userId) : null;
    },
    tenant: (_, __, ctx) => ctx.tenancy.tenant(requireTenant(ctx.principal)),
    permissions: () => Object.entries(PERMISSIONS).map(([name, description]) => ({ name, description })),
  },
  Mutation: {
    createTenant: (_, { input }, ctx) => ctx.tenancy.createTenant(input, ctx.principal),
    changeTenantPlan: (_, { input }, ctx) => ctx.tenancy.changePlan(input, ctx.principal),
    acceptInvitation: (_, { input }, ctx) => ctx.credentials.acceptInvitation(input),
    createRole: (_, { input }, ctx) => ctx.access.createRole(input),
    deleteRole: (_, { name }, ctx) => ctx.access.deleteRole(name),
    assignRole: (_, { input }, ctx) => ctx.access.assignRole(input),
    revokeRole: (_, { input }, ctx) => ctx.access.revokeRole(input),
    removeMember: (_, { userId }, ctx) => ctx.access.removeMember(userId),
    createGroup: (_, { input }, ctx) => ctx.access.createGroup(input),
    deleteGroup: (_, { id }, ctx) => ctx.access.deleteGroup(id),
    addGroupMember: (_, { groupId, userId }, ctx) => ctx.access.changeGroupMembership(groupId, userId, 'add'),
    removeGroupMember: (_, { groupId, userId }, ctx) => ctx.access.changeGroupMembership(groupId, userId, 'remove'),
    inviteUser: (_, { input }, ctx) => ctx.access.inviteUser(input),
    createServiceAccount: (_, { input }, ctx) => ctx.access.createServiceAccount(input),
    createApiKey: (_, { input }, ctx) => ctx.access.createApiKey(input),
    revokeApiKey: (_, { id }, ctx) => ctx.access.revokeApiKey(id),
    addTrustedIssuer: (_, { input }, ctx) => ctx.issuers.add(input),
    removeTrustedIssuer: (_, { id }, ctx) => ctx.issuers.remove(id),
  },
  Tenant: {
    __resolveReference: (ref, ctx) => ctx.tenancy.tenant(ref.id),
    users: (tenant, _, ctx) => ctx.tenancy.usersOf(tenant.id),
    groups: (tenant, _, ctx) => ctx.access.groups(tenant.id),
    roles: (tenant, _, ctx) => ctx.access.roles(tenant.id),
    serviceAccounts: (tenant, _, ctx) => ctx.access.serviceAccounts(tenant.id),
    invitations: (tenant, _, ctx) => ctx.access.invitations(tenant.id),
    trustedIssuers: (tenant, _, ctx) => ctx.issuers.list(tenant.id),
    auditEvents: (tenant, _, ctx) => ctx.tenancy.auditEvents(tenant.id),
  },
  User: {
    __resolveReference: (ref, ctx) => ctx.tenancy.user(ref.tenant.id, ref.id),
    tenant: (user, _, ctx) => ctx.tenancy.tenantOf(user),
    roles: (user, _, ctx) => ctx.access.rolesOfUser(user),
    groups: (user, _, ctx) => ctx.access.groupsOfUser(user),
    permissions: async (user, _, ctx) => (await ctx.access.accessOfUser(user.tenantId, user.id)).permissions,
  },
  Group: {
    members: (group, _, ctx) => ctx.access.membersOfGroup(group),
    roles: (group, _, ctx) => ctx.access.rolesOfGroup(group),
  },
  ServiceAccount: {
    roles: (account, _, ctx) => ctx.access.rolesOfServiceAccount(account),
    apiKeys: (account, _, ctx) => ctx.access.apiKeysOf(account),
  },
  AuditEvent: {
    detail: (event) => JSON.stringify(event.detail),
  },
  TrustedIssuer: {
    roleMapping: (trusted) => Object.entries(trusted.roleMapping).map(([value, role]) => ({ value, role })),
  },
  RoleAssignment: {
    user: (a, _, ctx) => (a.userId ? ctx.tenancy.user(requireTenant(ctx.principal), a.userId) : null),
    group: (a, _, ctx) => (a.groupId ? ctx.access.group(a.groupId) : null),
    serviceAccount: (a, _, ctx) => (a.serviceAccountId ? ctx.access.serviceAccount(a.serviceAccountId) : null),
  },
};
