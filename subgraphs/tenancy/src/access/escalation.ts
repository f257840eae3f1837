/**
 * The escalation rule, written once for every change of access in a tenant (roles, groups, memberships,
 * invitations, service accounts, API keys, issuers' role mappings): nobody gives a permission or scope they do
 * not hold, and nobody lowers someone who holds more than they do.
 */
import { BUILT_IN_ROLES, heldScopes, type Principal } from '@jarvis/platform/contracts';
import type { Transaction } from '@jarvis/platform/db';
import { forbidden } from '@jarvis/platform/errors';
import { groupBy } from '@jarvis/platform/subgraph';
import * as users from '../tenants/store.ts';
import * as store from './store.ts';
import type { Holder } from './store.ts';

/** Nobody gives (grants, assigns, lets join, maps, puts on a key) a permission or scope they do not hold. */
export function requireHeld(
  principal: Principal,
  given: { permissions?: readonly string[]; scopes?: readonly string[] },
  reason = 'you cannot grant what you do not hold',
) {
  const scopes: readonly string[] = heldScopes(principal);
  const missing = [
    ...lacking(principal, given.permissions ?? []),
    ...[...new Set(given.scopes)].filter((scope) => !scopes.includes(scope)).map((scope) => `scope ${scope}`),
  ];
  if (missing.length) throw forbidden(`${reason}: ${missing.join(', ')}`);
}

/**
 * Nobody lowers someone who holds more than they do: the caller must hold what is taken away, and none of
 * the users and service accounts losing it (a group stands for its members) may hold a permission the
 * caller lacks.
 */
export async function requireLowerable(principal: Principal, tx: Transaction, takenAway: readonly string[], losing: Holder[]) {
  const missing = lacking(principal, takenAway);
  if (missing.length) throw forbidden(`you cannot take away what you do not hold: ${missing.join(', ')}`);
  for (const { subject, permissions } of await permissionsOfSubjects(tx, await subjectsOf(tx, losing))) {
    const above = lacking(principal, permissions);
    if (above.length) throw forbidden(`you cannot lower ${await nameOf(tx, subject)}, who holds what you do not: ${above.join(', ')}`);
  }
}

function lacking(principal: Principal, permissions: Iterable<string>): string[] {
  return [...new Set(permissions)].filter((p) => !principal.permissions.includes(p));
}

/** The users and service accounts that holders stand for: a group stands for its members. */
async function subjectsOf(tx: Transaction, holders: Holder[]): Promise<Holder[]> {
  const groupIds = holders.flatMap((holder) => ('groupId' in holder ? [holder.groupId] : []));
  const members = groupIds.length ? await store.memberIdsOfGroups(tx, groupIds) : [];
  return [...holders.filter((holder) => !('groupId' in holder)), ...members.map(({ userId }) => ({ userId }))];
}

/** The permissions of each user and service account among `subjects`, read together (a group may be large). */
async function permissionsOfSubjects(tx: Transaction, subjects: Holder[]): Promise<{ subject: Holder; permissions: string[] }[]> {
  const userIds = [...new Set(subjects.flatMap((s) => ('userId' in s ? [s.userId] : [])))];
  const accountIds = [...new Set(subjects.flatMap((s) => ('serviceAccountId' in s ? [s.serviceAccountId] : [])))];
  const held = [
    ...(await store.effectiveRolesOfUsers(tx, userIds)).map(({ holderId, role }) => ({ subject: { userId: holderId } as Holder, role })),
    ...(await store.rolesHeld(tx, 'service_account_id', accountIds)).map(({ holderId, role }) => ({ subject: { serviceAccountId: holderId } as Holder, role })),
  ];
  const custom = new Map((await store.customRoles(tx)).map((role) => [role.name, role.permissions]));
  const permissionsOf = (role: string): readonly string[] => BUILT_IN_ROLES[role] ?? custom.get(role) ?? [];
  return [...groupBy(held, (h) => JSON.stringify(h.subject)).values()].map((rows) => ({
    subject: rows[0]!.subject,
    permissions: [...new Set(rows.flatMap((row) => permissionsOf(row.role)))],
  }));
}

/** How a refusal names the user or service account it would have lowered. */
async function nameOf(tx: Transaction, subject: Holder): Promise<string> {
  if ('userId' in subject) return (await users.usersByIds(tx, [subject.userId]))[0]?.email ?? 'a member';
  if ('serviceAccountId' in subject) return `service account "${(await store.serviceAccountsByIds(tx, [subject.serviceAccountId]))[0]?.name}"`;
  return 'a group';
}
