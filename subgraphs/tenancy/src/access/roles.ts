/** What roles give: a role's permissions, and what users, groups and service accounts hold through theirs. */
import { BUILT_IN_ROLES, isBuiltInRole, type Permission } from '@jarvis/platform/contracts';
import type { Transaction } from '@jarvis/platform/db';
import { badUserInput } from '@jarvis/platform/errors';
import * as store from './store.ts';

/** What a signed-in subject may do: the roles it holds and the permissions they add up to. */
export interface Access {
  roles: string[];
  permissions: string[];
}

export interface MemberAccess extends Access {
  groups: string[];
}

export async function roleExists(tx: Transaction, role: string): Promise<boolean> {
  return isBuiltInRole(role) || (await store.customRole(tx, role)) !== undefined;
}

/** A role's permissions; BAD_USER_INPUT when the tenant has no role of that name. */
export async function permissionsOfRole(tx: Transaction, role: string): Promise<readonly string[]> {
  const builtIn = BUILT_IN_ROLES[role];
  if (builtIn) return builtIn;
  const custom = await store.customRole(tx, role);
  if (!custom) throw badUserInput(`there is no role "${role}"`, 'role');
  return custom.permissions;
}

/** A member's roles, directly and through groups (plus any an external issuer's claims map to), and their permissions. */
export async function userAccess(tx: Transaction, userId: string, mappedRoles: string[] = []): Promise<MemberAccess> {
  const roles = [...new Set([...(await store.effectiveUserRoles(tx, userId)), ...mappedRoles])].sort();
  const groups = (await store.groupsOfUsers(tx, [userId])).map((group) => group.id).sort();
  return { ...(await accessFromRoles(tx, roles)), groups };
}

export async function accessFromRoles(tx: Transaction, roles: string[]): Promise<Access> {
  const permissions = new Set<string>(roles.flatMap((role) => (BUILT_IN_ROLES[role] ?? []) as Permission[]));
  const custom = roles.filter((role) => !isBuiltInRole(role));
  if (custom.length) for (const p of await store.permissionsOfCustomRoles(tx, custom)) permissions.add(p);
  return { roles, permissions: [...permissions].sort() };
}

/** What a group's roles give its members, or what a service account holds. */
export async function permissionsOfHolder(tx: Transaction, holder: { groupId: string } | { serviceAccountId: string }): Promise<string[]> {
  const [kind, holderId] = 'groupId' in holder ? (['group_id', holder.groupId] as const) : (['service_account_id', holder.serviceAccountId] as const);
  return (await accessFromRoles(tx, (await store.rolesHeld(tx, kind, [holderId])).map((r) => r.role))).permissions;
}
