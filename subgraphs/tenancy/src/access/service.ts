import { randomUUID } from 'node:crypto';
import {
  API_KEY_PREFIX,
  BUILT_IN_ROLES,
  isBuiltInRole,
  isPermission,
  isReservedScope,
  isScope,
  requireTenant,
  SCOPES,
  type Principal,
} from '@jarvis/platform/contracts';
import { isUniqueViolation, type Database, type Transaction } from '@jarvis/platform/db';
import { badUserInput, conflict, notFound } from '@jarvis/platform/errors';
import { checkInput, groupBy, parseInput, tenantLoader } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type {
  CreateApiKeyInput,
  CreateGroupInput,
  CreateRoleInput,
  CreateServiceAccountInput,
  InviteUserInput,
  RoleAssignmentInput,
} from '../generated/schema-types.ts';
import * as users from '../tenants/store.ts';
import { INVITATION_PREFIX, newTenantSecret } from '../secrets.ts';
import * as store from './store.ts';
import type { ApiKey, Group, Holder, Invitation, ServiceAccount } from './store.ts';
import { requireHeld, requireLowerable } from './escalation.ts';
import { permissionsOfHolder, permissionsOfRole, userAccess } from './roles.ts';

export { permissionsOfRole } from './roles.ts';
export { Credentials } from './credentials.ts';

const INVITATION_TTL_MS = 7 * 24 * 3_600_000;

export interface Role {
  name: string;
  builtIn: boolean;
  description: string | null;
  permissions: string[];
}

import type { Access } from './roles.ts';

export type { Access, MemberAccess } from './roles.ts';

const name = z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters');
const roleName = z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'use 1-40 lower-case letters, digits and hyphens, starting with a letter');
const permission = z.string().refine(isPermission, 'is not a permission');
/** Only the catalogue's scopes go on a key; `jarvis:` ones are Jarvis's own and never do. */
const keyScopes = z
  .array(z.string())
  .default([])
  .superRefine((scopes, ctx) => {
    const refused = scopes.filter((scope) => !isScope(scope)).map((scope) => (isReservedScope(scope) ? `${scope} (reserved for Jarvis)` : scope));
    if (refused.length) ctx.addIssue({ code: 'custom', message: `${refused.join(', ')}: a key may carry only ${Object.keys(SCOPES).join(', ')}` });
  })
  .transform((scopes) => [...new Set(scopes)]);
const email = z.email().transform((value) => value.toLowerCase());
const id = z.uuid('must be an id');

const createRoleInput = z.object({
  name: roleName.refine((value) => !isBuiltInRole(value), 'is the name of a built-in role'),
  description: z.string().trim().max(500).nullish(),
  permissions: z.array(permission).min(1, 'name at least one permission'),
});
const holderChecks = z
  .object({ userId: id.nullish(), groupId: id.nullish(), serviceAccountId: id.nullish() })
  .refine((input) => [input.userId, input.groupId, input.serviceAccountId].filter(Boolean).length === 1, {
    message: 'name exactly one of userId, groupId, serviceAccountId',
  });
const inviteChecks = z.object({ email });
const serviceAccountInput = z.object({ name, roles: z.array(z.string()).default([]) });
const apiKeyInput = z.object({
  serviceAccountId: id,
  name,
  scopes: keyScopes,
  expiresAt: z.date().refine((date) => date.getTime() > Date.now(), 'must be in the future').nullish(),
});

/**
 * Roles, groups, invitations, service accounts and API keys of the caller's tenant. Every change needs the
 * permission its field's @policy names (checked where the field resolves, platform/src/subgraph/field-policies.ts) and
 * keeps to the escalation rule, checked here: nobody gives what they do not hold (`requireHeld`), and nobody
 * lowers someone who holds more than they do (`requireLowerable`). The checks run in the transaction of the
 * change, so a refused one writes nothing.
 */
export class AccessService {
  private readonly userRoles;
  private readonly userGroups;
  private readonly groupMembers;
  private readonly groupRoles;
  private readonly accountRoles;
  private readonly accountKeys;

  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
  ) {
    const roleLoader = (kind: 'user_id' | 'group_id' | 'service_account_id') =>
      tenantLoader(db, async (tx, ids) => mapValues(groupBy(await store.rolesHeld(tx, kind, ids), (r) => r.holderId), (rows) => rows.map((r) => r.role)));
    this.userRoles = roleLoader('user_id');
    this.groupRoles = roleLoader('group_id');
    this.accountRoles = roleLoader('service_account_id');
    this.userGroups = tenantLoader(db, async (tx, ids) => groupBy(await store.groupsOfUsers(tx, ids), (g) => g.userId));
    this.groupMembers = tenantLoader(db, async (tx, ids) => {
      const memberships = await store.memberIdsOfGroups(tx, ids);
      const members = new Map((await users.usersByIds(tx, memberships.map((m) => m.userId))).map((u) => [u.id, u]));
      return mapValues(groupBy(memberships, (m) => m.groupId), (rows) => rows.map((m) => members.get(m.userId)!));
    });
    this.accountKeys = tenantLoader(db, async (tx, ids) => groupBy(await store.apiKeysOf(tx, ids), (k) => k.serviceAccountId));
  }

  async roles(tenantId: string): Promise<Role[]> {
    const custom = await this.db.withTenant(tenantId, (tx) => store.customRoles(tx));
    const builtIn = Object.entries(BUILT_IN_ROLES).map(([roleName, permissions]) => ({
      name: roleName,
      builtIn: true,
      description: null,
      permissions: [...permissions],
    }));
    return [...builtIn, ...custom.map((role) => ({ ...role, builtIn: false }))];
  }

  rolesOfUser = (user: { tenantId: string; id: string }) => this.list(this.userRoles, user);
  groupsOfUser = (user: { tenantId: string; id: string }) => this.list(this.userGroups, user);
  membersOfGroup = (group: Group) => this.list(this.groupMembers, group);
  rolesOfGroup = (group: Group) => this.list(this.groupRoles, group);
  rolesOfServiceAccount = (account: ServiceAccount) => this.list(this.accountRoles, account);
  apiKeysOf = (account: ServiceAccount) => this.list(this.accountKeys, account);

  private async list<T>(loader: { load(key: { tenantId: string; id: string }): Promise<T[] | null> }, row: { tenantId: string; id: string }) {
    return (await loader.load({ tenantId: row.tenantId, id: row.id })) ?? [];
  }

  /** Effective roles and permissions of a user of the tenant, groups included. */
  async accessOfUser(tenantId: string, userId: string): Promise<Access> {
    return this.db.withTenant(tenantId, (tx) => userAccess(tx, userId));
  }

  groups(tenantId: string): Promise<Group[]> {
    return this.db.withTenant(tenantId, (tx) => store.groups(tx));
  }

  async group(groupId: string): Promise<Group | null> {
    const [group] = await this.db.withTenant(requireTenant(this.principal), (tx) => store.groupsByIds(tx, [groupId]));
    return group ?? null;
  }

  async serviceAccount(accountId: string): Promise<ServiceAccount | null> {
    const [account] = await this.db.withTenant(requireTenant(this.principal), (tx) => store.serviceAccountsByIds(tx, [accountId]));
    return account ?? null;
  }

  serviceAccounts(tenantId: string): Promise<ServiceAccount[]> {
    return this.db.withTenant(tenantId, (tx) => store.serviceAccounts(tx));
  }

  invitations(tenantId: string): Promise<Invitation[]> {
    return this.db.withTenant(tenantId, (tx) => store.pendingInvitations(tx));
  }

  async createRole(given: CreateRoleInput): Promise<Role> {
    const tenantId = requireTenant(this.principal);
    const input = parseInput(createRoleInput, given);
    requireHeld(this.principal, { permissions: input.permissions });
    try {
      const role = await this.db.withTenant(tenantId, (tx) =>
        store.insertRole(tx, tenantId, { name: input.name, description: input.description ?? null, permissions: input.permissions }),
      );
      return { ...role, builtIn: false };
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a role named "${input.name}" exists`, 'name');
      throw error;
    }
  }

  async deleteRole(roleName: string): Promise<boolean> {
    const tenantId = requireTenant(this.principal);
    if (isBuiltInRole(roleName)) throw badUserInput(`"${roleName}" is a built-in role`, 'name');
    return this.db.withTenant(tenantId, async (tx) => {
      const role = await store.customRole(tx, roleName);
      await requireLowerable(this.principal, tx, role?.permissions ?? [], (await store.assignmentsOfRole(tx, roleName)).map(holderOf));
      return store.deleteRole(tx, roleName);
    });
  }

  async assignRole(given: RoleAssignmentInput): Promise<store.RoleAssignment> {
    const tenantId = requireTenant(this.principal);
    const { role, holder } = parseHolder(given);
    return this.db.withTenant(tenantId, async (tx) => {
      requireHeld(this.principal, { permissions: await permissionsOfRole(tx, role) });
      await requireHolder(tx, holder);
      await store.assignRole(tx, randomUUID(), tenantId, role, holder);
      return { role, userId: null, groupId: null, serviceAccountId: null, ...holder };
    });
  }

  async revokeRole(given: RoleAssignmentInput): Promise<boolean> {
    const tenantId = requireTenant(this.principal);
    const { role, holder } = parseHolder(given);
    return this.db.withTenant(tenantId, async (tx) => {
      await requireHolder(tx, holder);
      await requireLowerable(this.principal, tx, await permissionsOfRole(tx, role), [holder]);
      const revoked = await store.revokeRole(tx, role, holder);
      await requireOwner(tx);
      return revoked;
    });
  }

  /** Nobody removes a member who holds more than they do, and the last owner stays. */
  async removeMember(userId: string): Promise<boolean> {
    const tenantId = requireTenant(this.principal);
    parseInput(z.object({ userId: id }), { userId });
    return this.db.withTenant(tenantId, async (tx) => {
      await requireHolder(tx, { userId });
      // It loses everything it holds: the check on who is lowered covers what is taken away.
      await requireLowerable(this.principal, tx, [], [{ userId }]);
      await store.deleteUser(tx, userId);
      await requireOwner(tx);
      return true;
    });
  }

  async deleteGroup(groupId: string): Promise<boolean> {
    const tenantId = requireTenant(this.principal);
    parseInput(z.object({ groupId: id }), { groupId });
    return this.db.withTenant(tenantId, async (tx) => {
      await requireLowerable(this.principal, tx, await permissionsOfHolder(tx, { groupId }), [{ groupId }]);
      if (!(await store.deleteGroup(tx, groupId))) throw notFound('no such group');
      return true;
    });
  }

  async createGroup(given: CreateGroupInput): Promise<Group> {
    const tenantId = requireTenant(this.principal);
    const input = parseInput(z.object({ name }), given);
    try {
      return await this.db.withTenant(tenantId, (tx) => store.insertGroup(tx, { id: randomUUID(), tenantId, name: input.name }));
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a group named "${input.name}" exists`, 'name');
      throw error;
    }
  }

  /** Joining a group gives its roles, so the caller must hold them; leaving it lowers the member. */
  async changeGroupMembership(groupId: string, userId: string, change: 'add' | 'remove'): Promise<Group> {
    const tenantId = requireTenant(this.principal);
    parseInput(z.object({ groupId: id, userId: id }), { groupId, userId });
    return this.db.withTenant(tenantId, async (tx) => {
      const [group] = await store.groupsByIds(tx, [groupId]);
      if (!group) throw notFound('no such group');
      await requireHolder(tx, { userId });
      const carried = await permissionsOfHolder(tx, { groupId });
      if (change === 'add') {
        requireHeld(this.principal, { permissions: carried });
        await store.addGroupMember(tx, tenantId, groupId, userId);
      } else {
        await requireLowerable(this.principal, tx, carried, [{ userId }]);
        await store.removeGroupMember(tx, groupId, userId);
      }
      return group;
    });
  }

  async inviteUser(given: InviteUserInput): Promise<{ invitation: Invitation; token: string }> {
    const tenantId = requireTenant(this.principal);
    const input = checkInput(inviteChecks, given);
    return this.db.withTenant(tenantId, async (tx) => {
      requireHeld(this.principal, { permissions: await permissionsOfRole(tx, input.role) });
      if (await users.userByEmail(tx, input.email)) throw conflict(`${input.email} is a member already`, 'email');
      const { token, hash } = newTenantSecret(INVITATION_PREFIX, tenantId);
      const invitation = await store.insertInvitation(
        tx,
        { id: randomUUID(), tenantId, email: input.email, role: input.role, invitedBy: this.principal.userId ?? null, expiresAt: new Date(Date.now() + INVITATION_TTL_MS) },
        hash,
      );
      return { invitation, token };
    });
  }

  async createServiceAccount(given: CreateServiceAccountInput): Promise<ServiceAccount> {
    const tenantId = requireTenant(this.principal);
    const input = parseInput(serviceAccountInput, given);
    try {
      return await this.db.withTenant(tenantId, async (tx) => {
        for (const role of input.roles) requireHeld(this.principal, { permissions: await permissionsOfRole(tx, role) });
        const account = await store.insertServiceAccount(tx, { id: randomUUID(), tenantId, name: input.name });
        for (const role of input.roles) await store.assignRole(tx, randomUUID(), tenantId, role, { serviceAccountId: account.id });
        return account;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a service account named "${input.name}" exists`, 'name');
      throw error;
    }
  }

  /**
   * A new key for a service account; its secret is in the answer and nowhere else, ever. Whoever holds the
   * secret acts as the account with the key's scopes, so the caller must hold both.
   */
  async createApiKey(given: CreateApiKeyInput): Promise<{ apiKey: ApiKey; secret: string }> {
    const tenantId = requireTenant(this.principal);
    const input = parseInput(apiKeyInput, given);
    requireHeld(this.principal, { scopes: input.scopes });
    return this.db.withTenant(tenantId, async (tx) => {
      const [account] = await store.serviceAccountsByIds(tx, [input.serviceAccountId]);
      if (!account) throw notFound('no such service account');
      const actsAs = await permissionsOfHolder(tx, { serviceAccountId: account.id });
      requireHeld(this.principal, { permissions: actsAs }, `a key acts as service account "${account.name}", which holds what you do not`);
      const { token, hash } = newTenantSecret(API_KEY_PREFIX, tenantId);
      const apiKey = await store.insertApiKey(
        tx,
        { id: randomUUID(), tenantId, serviceAccountId: account.id, name: input.name, scopes: input.scopes, expiresAt: input.expiresAt ?? null },
        hash,
      );
      return { apiKey, secret: token };
    });
  }

  async revokeApiKey(keyId: string): Promise<ApiKey> {
    const tenantId = requireTenant(this.principal);
    parseInput(z.object({ id }), { id: keyId });
    return this.db.withTenant(tenantId, async (tx) => {
      const [key] = await store.apiKeysByIds(tx, [keyId]);
      if (!key) throw notFound('no such API key');
      await requireLowerable(this.principal, tx, [], [{ serviceAccountId: key.serviceAccountId }]);
      return (await store.revokeApiKey(tx, keyId))!;
    });
  }

}

/** Rolls the change back when it left the tenant without a member holding the owner role. */
async function requireOwner(tx: Transaction): Promise<void> {
  if (!(await store.assignmentsOfRole(tx, 'owner')).some((a) => a.userId)) throw conflict('a tenant keeps at least one owner', 'role');
}

function parseHolder(given: RoleAssignmentInput): { role: string; holder: Holder } {
  const input = checkInput(holderChecks, given);
  const holder: Holder = input.userId
    ? { userId: input.userId }
    : input.groupId
      ? { groupId: input.groupId }
      : { serviceAccountId: input.serviceAccountId! };
  return { role: input.role, holder };
}

async function requireHolder(tx: Transaction, holder: Holder): Promise<void> {
  const found =
    'userId' in holder
      ? await users.usersByIds(tx, [holder.userId])
      : 'groupId' in holder
        ? await store.groupsByIds(tx, [holder.groupId])
        : await store.serviceAccountsByIds(tx, [holder.serviceAccountId]);
  if (!found.length) throw notFound('no such user, group or service account in this tenant');
}

function holderOf(assignment: store.RoleAssignment): Holder {
  if (assignment.userId) return { userId: assignment.userId };
  if (assignment.groupId) return { groupId: assignment.groupId };
  return { serviceAccountId: assignment.serviceAccountId! };
}

function mapValues<K, A, B>(map: Map<K, A>, f: (value: A) => B): Map<K, B> {
  return new Map([...map].map(([key, value]) => [key, f(value)]));
}
