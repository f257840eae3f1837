import { forbidden, unauthenticated } from '../errors.ts';
import type { Principal } from './principal.ts';

/**
 * The permission matrix: resource × action. `@policy(policies: [["kb:read"]])` in subgraph SDL names these,
 * tokens carry the caller's effective set; the gateway enforces each field's rule and the subgraph checks it again
 * where the field resolves (subgraph/field-policies.ts).
 */
export const PERMISSIONS = {
  'kb:read': 'Read knowledge bases and search them',
  'kb:write': 'Create knowledge bases and add documents',
  'kb:manage': 'Delete knowledge bases and change who may use them',
  'chat:use': 'Hold conversations and read them',
  'usage:read': "Read the tenant's usage and quotas",
  'members:read': 'See members, groups and roles',
  'members:manage': 'Invite members, manage groups and assign roles',
  'apikeys:manage': 'Manage service accounts and their API keys',
  'tenant:admin': 'Change the tenant itself and define custom roles',
  'agents:read': 'Read workflow and agent definitions, their versions and labels',
  'agents:write': 'Create workflow and agent definitions, add versions, publish and roll back labels',
  'agents:run': 'Start workflow and agent runs and follow them',
  'agents:approve': "Approve or reject a run's pending approval steps",
} as const;

export type Permission = keyof typeof PERMISSIONS;

export function isPermission(value: string): value is Permission {
  return Object.hasOwn(PERMISSIONS, value);
}

const VIEWER: Permission[] = ['kb:read', 'chat:use', 'members:read', 'agents:read'];
const MEMBER: Permission[] = [...VIEWER, 'kb:write', 'agents:run'];
const ADMIN: Permission[] = [...MEMBER, 'kb:manage', 'usage:read', 'members:manage', 'apikeys:manage', 'agents:write', 'agents:approve'];
const OWNER: Permission[] = [...ADMIN, 'tenant:admin'];

/** The built-in roles, each holding everything the one below it holds: owner > admin > member > viewer. */
export const BUILT_IN_ROLES: Record<string, readonly Permission[]> = {
  owner: OWNER,
  admin: ADMIN,
  member: MEMBER,
  viewer: VIEWER,
};

export function isBuiltInRole(name: string): boolean {
  return Object.hasOwn(BUILT_IN_ROLES, name);
}

/**
 * The scopes an API key may carry, each with the permission whose holders may give it: a scope is held by a
 * caller whose token carries it, or whose permissions entitle it to give it. Nothing else can be put on a key.
 */
export const SCOPES = {
  'usage:write': { description: "Record the tenant's own usage under its own meters (recordUsage)", grantedBy: 'tenant:admin' },
} as const satisfies Record<string, { description: string; grantedBy: Permission }>;

export type Scope = keyof typeof SCOPES;

export function isScope(value: string): value is Scope {
  return Object.hasOwn(SCOPES, value);
}

/**
 * Scopes under this prefix belong to Jarvis itself (the operator credential, the gateway's own producers): no
 * token, key or tenant ever carries one; the gateway strips them from every token it verifies.
 */
export const RESERVED_SCOPE_PREFIX = 'jarvis:';
/** The deployment's operator: sign-up on any plan and isolation, plan changes. */
export const OPERATOR_SCOPE = 'jarvis:operator';
/** The gateway recording the requests it metered. */
export const METER_SCOPE = 'jarvis:meter';

export const isReservedScope = (scope: string) => scope.startsWith(RESERVED_SCOPE_PREFIX);

/** The scopes a caller holds: those its token carries, and those its permissions entitle it to give. */
export function heldScopes(principal: Pick<Principal, 'scopes' | 'permissions'>): Scope[] {
  const entitled = (Object.keys(SCOPES) as Scope[]).filter((scope) => principal.permissions.includes(SCOPES[scope].grantedBy));
  return [...new Set([...principal.scopes.filter(isScope), ...entitled])].sort();
}

/** The signed-in caller's tenant; an anonymous caller gets UNAUTHENTICATED. */
export function requireTenant(principal: Principal): string {
  if (principal.tenantId === null) throw unauthenticated('sign in first');
  return principal.tenantId;
}

/** The caller's tenant, when the caller holds `permission` there; FORBIDDEN otherwise. */
export function requirePermission(principal: Principal, permission: Permission): string {
  const tenantId = requireTenant(principal);
  if (!principal.permissions.includes(permission)) throw forbidden(`this needs the ${permission} permission`);
  return tenantId;
}
