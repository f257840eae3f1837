/**
 * Who may do what with a knowledge base. A caller's level on one is the highest of: MANAGE for tenant
 * managers (kb:manage) and for its owner; the best grant to the caller or one of its groups; what it lets
 * every member do (memberAccess). The caller's role caps it: without kb:read nothing, without kb:write at
 * most READ. Per-document restrictions (a document's readers) bind everyone below MANAGE.
 */
import type { Principal } from '@jarvis/platform/contracts';

export const ACCESS_LEVELS = ['NONE', 'READ', 'WRITE', 'MANAGE'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];
export type MemberAccess = Exclude<AccessLevel, 'MANAGE'>;

export const rank = (level: AccessLevel): number => ACCESS_LEVELS.indexOf(level);
export const atLeast = (level: AccessLevel, needed: AccessLevel): boolean => rank(level) >= rank(needed);
const highest = (levels: AccessLevel[]): AccessLevel => levels.reduce((a, b) => (rank(b) > rank(a) ? b : a), 'NONE');
const lowest = (a: AccessLevel, b: AccessLevel): AccessLevel => (rank(a) <= rank(b) ? a : b);

/** The reader names that stand for a caller in grants and document restrictions: `user:<id>`, `group:<id>`. */
export function readersOf(principal: Principal): string[] {
  return [
    ...(principal.userId ? [`user:${principal.userId}`] : []),
    ...(principal.groups ?? []).map((groupId) => `group:${groupId}`),
  ];
}

export interface AccessFacts {
  ownerId: string | null;
  memberAccess: MemberAccess;
  /** The best level granted to any of the caller's readers, or NONE. */
  granted: AccessLevel;
}

export function accessLevel(principal: Principal, facts: AccessFacts): AccessLevel {
  const { permissions } = principal;
  if (!permissions.includes('kb:read')) return 'NONE';
  const isOwner = principal.userId !== undefined && facts.ownerId === principal.userId;
  const level = permissions.includes('kb:manage') || isOwner ? 'MANAGE' : highest([facts.granted, facts.memberAccess]);
  return permissions.includes('kb:write') ? level : lowest(level, 'READ');
}

/** `user:<id>` or `group:<id>` from an input naming exactly one of them. */
export function readerName(input: { userId?: string | null; groupId?: string | null }): string | undefined {
  if (input.userId && !input.groupId) return `user:${input.userId}`;
  if (input.groupId && !input.userId) return `group:${input.groupId}`;
  return undefined;
}
