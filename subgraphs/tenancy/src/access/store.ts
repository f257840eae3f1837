import type { Transaction } from '@jarvis/platform/db';

export interface CustomRole {
  name: string;
  description: string | null;
  permissions: string[];
}

export interface Group {
  id: string;
  tenantId: string;
  name: string;
  createdAt: Date;
}

export interface ServiceAccount {
  id: string;
  tenantId: string;
  name: string;
  createdAt: Date;
}

export interface ApiKey {
  id: string;
  tenantId: string;
  serviceAccountId: string;
  name: string;
  scopes: string[];
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
}

export interface Invitation {
  id: string;
  tenantId: string;
  email: string;
  role: string;
  expiresAt: Date;
  acceptedAt: Date | null;
  createdAt: Date;
}

/** Exactly one holder per assignment. */
export type Holder = { userId: string } | { groupId: string } | { serviceAccountId: string };

export interface RoleAssignment {
  role: string;
  userId: string | null;
  groupId: string | null;
  serviceAccountId: string | null;
}

const GROUP_COLUMNS = `id, tenant_id AS "tenantId", name, created_at AS "createdAt"`;
const SERVICE_ACCOUNT_COLUMNS = GROUP_COLUMNS;
const API_KEY_COLUMNS = `id, tenant_id AS "tenantId", service_account_id AS "serviceAccountId", name, scopes,
  expires_at AS "expiresAt", revoked_at AS "revokedAt", last_used_at AS "lastUsedAt", created_at AS "createdAt"`;
const INVITATION_COLUMNS = `id, tenant_id AS "tenantId", email, role, expires_at AS "expiresAt",
  accepted_at AS "acceptedAt", created_at AS "createdAt"`;

export function customRoles(tx: Transaction): Promise<CustomRole[]> {
  return tx.query<CustomRole>(`SELECT name, description, permissions FROM roles ORDER BY name`);
}

export async function customRole(tx: Transaction, name: string): Promise<CustomRole | undefined> {
  const [row] = await tx.query<CustomRole>(`SELECT name, description, permissions FROM roles WHERE name = $1`, [name]);
  return row;
}

export async function insertRole(tx: Transaction, tenantId: string, role: CustomRole): Promise<CustomRole> {
  const [row] = await tx.query<CustomRole>(
    `INSERT INTO roles (tenant_id, name, description, permissions) VALUES ($1, $2, $3, $4)
     RETURNING name, description, permissions`,
    [tenantId, role.name, role.description, role.permissions],
  );
  return row!;
}

/**
 * Deletes a custom role, every assignment of it and the open invitations to it (a role of the same name made
 * later must not reach them); false when there is no such role.
 */
export async function deleteRole(tx: Transaction, name: string): Promise<boolean> {
  const deleted = await tx.query(`DELETE FROM roles WHERE name = $1 RETURNING name`, [name]);
  await tx.query(`DELETE FROM role_assignments WHERE role = $1`, [name]);
  await tx.query(`DELETE FROM invitations WHERE role = $1 AND accepted_at IS NULL`, [name]);
  return deleted.length > 0;
}

function holderColumn(holder: Holder): { column: string; id: string } {
  if ('userId' in holder) return { column: 'user_id', id: holder.userId };
  if ('groupId' in holder) return { column: 'group_id', id: holder.groupId };
  return { column: 'service_account_id', id: holder.serviceAccountId };
}

export async function assignRole(tx: Transaction, id: string, tenantId: string, role: string, holder: Holder): Promise<void> {
  const { column, id: holderId } = holderColumn(holder);
  await tx.query(
    `INSERT INTO role_assignments (id, tenant_id, role, ${column}) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
    [id, tenantId, role, holderId],
  );
}

export async function revokeRole(tx: Transaction, role: string, holder: Holder): Promise<boolean> {
  const { column, id } = holderColumn(holder);
  const deleted = await tx.query(`DELETE FROM role_assignments WHERE role = $1 AND ${column} = $2 RETURNING id`, [role, id]);
  return deleted.length > 0;
}

/** Role names held directly, per holder id, for the holders of one kind. */
export async function rolesHeld(tx: Transaction, kind: 'user_id' | 'group_id' | 'service_account_id', ids: string[]) {
  return tx.query<{ holderId: string; role: string }>(
    `SELECT ${kind} AS "holderId", role FROM role_assignments WHERE ${kind} = ANY($1::uuid[]) ORDER BY role`,
    [ids],
  );
}

export function assignmentsOfRole(tx: Transaction, role: string): Promise<RoleAssignment[]> {
  return tx.query<RoleAssignment>(
    `SELECT role, user_id AS "userId", group_id AS "groupId", service_account_id AS "serviceAccountId"
     FROM role_assignments WHERE role = $1`,
    [role],
  );
}

/** Every role a user holds, directly or through a group. */
export async function effectiveUserRoles(tx: Transaction, userId: string): Promise<string[]> {
  const rows = await tx.query<{ role: string }>(
    `SELECT role FROM role_assignments WHERE user_id = $1
     UNION
     SELECT a.role FROM role_assignments a JOIN group_members m ON m.group_id = a.group_id WHERE m.user_id = $1
     ORDER BY role`,
    [userId],
  );
  return rows.map((row) => row.role);
}

/** Every role each of the users holds, directly or through a group. */
export function effectiveRolesOfUsers(tx: Transaction, userIds: string[]) {
  return tx.query<{ holderId: string; role: string }>(
    `SELECT user_id AS "holderId", role FROM role_assignments WHERE user_id = ANY($1::uuid[])
     UNION
     SELECT m.user_id, a.role FROM role_assignments a JOIN group_members m ON m.group_id = a.group_id WHERE m.user_id = ANY($1::uuid[])`,
    [userIds],
  );
}

export async function serviceAccountRoles(tx: Transaction, serviceAccountId: string): Promise<string[]> {
  const rows = await rolesHeld(tx, 'service_account_id', [serviceAccountId]);
  return rows.map((row) => row.role);
}

export async function permissionsOfCustomRoles(tx: Transaction, names: string[]): Promise<string[]> {
  const rows = await tx.query<{ permission: string }>(
    `SELECT DISTINCT unnest(permissions) AS permission FROM roles WHERE name = ANY($1::text[])`,
    [names],
  );
  return rows.map((row) => row.permission);
}

export async function deleteGroup(tx: Transaction, id: string): Promise<boolean> {
  return (await tx.query(`DELETE FROM groups WHERE id = $1 RETURNING id`, [id])).length > 0;
}

export async function deleteUser(tx: Transaction, id: string): Promise<boolean> {
  return (await tx.query(`DELETE FROM users WHERE id = $1 RETURNING id`, [id])).length > 0;
}

export async function insertGroup(tx: Transaction, group: Omit<Group, 'createdAt'>): Promise<Group> {
  const [row] = await tx.query<Group>(
    `INSERT INTO groups (id, tenant_id, name) VALUES ($1, $2, $3) RETURNING ${GROUP_COLUMNS}`,
    [group.id, group.tenantId, group.name],
  );
  return row!;
}

export function groups(tx: Transaction): Promise<Group[]> {
  return tx.query<Group>(`SELECT ${GROUP_COLUMNS} FROM groups ORDER BY name`);
}

export function groupsByIds(tx: Transaction, ids: string[]): Promise<Group[]> {
  return tx.query<Group>(`SELECT ${GROUP_COLUMNS} FROM groups WHERE id = ANY($1::uuid[])`, [ids]);
}

export function groupsOfUsers(tx: Transaction, userIds: string[]) {
  return tx.query<Group & { userId: string }>(
    `SELECT g.id, g.tenant_id AS "tenantId", g.name, g.created_at AS "createdAt", m.user_id AS "userId"
     FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ANY($1::uuid[]) ORDER BY g.name`,
    [userIds],
  );
}

export function memberIdsOfGroups(tx: Transaction, groupIds: string[]) {
  return tx.query<{ groupId: string; userId: string }>(
    `SELECT group_id AS "groupId", user_id AS "userId" FROM group_members WHERE group_id = ANY($1::uuid[])`,
    [groupIds],
  );
}

export async function addGroupMember(tx: Transaction, tenantId: string, groupId: string, userId: string): Promise<void> {
  await tx.query(
    `INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
    [tenantId, groupId, userId],
  );
}

export async function removeGroupMember(tx: Transaction, groupId: string, userId: string): Promise<void> {
  await tx.query(`DELETE FROM group_members WHERE group_id = $1 AND user_id = $2`, [groupId, userId]);
}

export async function insertServiceAccount(tx: Transaction, account: Omit<ServiceAccount, 'createdAt'>): Promise<ServiceAccount> {
  const [row] = await tx.query<ServiceAccount>(
    `INSERT INTO service_accounts (id, tenant_id, name) VALUES ($1, $2, $3) RETURNING ${SERVICE_ACCOUNT_COLUMNS}`,
    [account.id, account.tenantId, account.name],
  );
  return row!;
}

export function serviceAccounts(tx: Transaction): Promise<ServiceAccount[]> {
  return tx.query<ServiceAccount>(`SELECT ${SERVICE_ACCOUNT_COLUMNS} FROM service_accounts ORDER BY name`);
}

export function serviceAccountsByIds(tx: Transaction, ids: string[]): Promise<ServiceAccount[]> {
  return tx.query<ServiceAccount>(`SELECT ${SERVICE_ACCOUNT_COLUMNS} FROM service_accounts WHERE id = ANY($1::uuid[])`, [ids]);
}

export async function insertApiKey(
  tx: Transaction,
  key: Pick<ApiKey, 'id' | 'tenantId' | 'serviceAccountId' | 'name' | 'scopes' | 'expiresAt'>,
  secretHash: string,
): Promise<ApiKey> {
  const [row] = await tx.query<ApiKey>(
    `INSERT INTO api_keys (id, tenant_id, service_account_id, name, secret_hash, scopes, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${API_KEY_COLUMNS}`,
    [key.id, key.tenantId, key.serviceAccountId, key.name, secretHash, key.scopes, key.expiresAt],
  );
  return row!;
}

export function apiKeysOf(tx: Transaction, serviceAccountIds: string[]): Promise<ApiKey[]> {
  return tx.query<ApiKey>(
    `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE service_account_id = ANY($1::uuid[]) ORDER BY created_at DESC`,
    [serviceAccountIds],
  );
}

export function apiKeysByIds(tx: Transaction, ids: string[]): Promise<ApiKey[]> {
  return tx.query<ApiKey>(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE id = ANY($1::uuid[])`, [ids]);
}

export async function revokeApiKey(tx: Transaction, id: string): Promise<ApiKey | undefined> {
  const [row] = await tx.query<ApiKey>(
    `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${API_KEY_COLUMNS}`,
    [id],
  );
  return row;
}

/** A live key by the hash of its secret, marked as used now; undefined when unknown, revoked or expired. */
export async function useApiKey(tx: Transaction, secretHash: string): Promise<ApiKey | undefined> {
  const [row] = await tx.query<ApiKey>(
    `UPDATE api_keys SET last_used_at = now()
     WHERE secret_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
     RETURNING ${API_KEY_COLUMNS}`,
    [secretHash],
  );
  return row;
}

export async function insertInvitation(
  tx: Transaction,
  invitation: Omit<Invitation, 'acceptedAt' | 'createdAt'> & { invitedBy: string | null },
  tokenHash: string,
): Promise<Invitation> {
  const [row] = await tx.query<Invitation>(
    `INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${INVITATION_COLUMNS}`,
    [invitation.id, invitation.tenantId, invitation.email, invitation.role, tokenHash, invitation.invitedBy, invitation.expiresAt],
  );
  return row!;
}

export function pendingInvitations(tx: Transaction): Promise<Invitation[]> {
  return tx.query<Invitation>(
    `SELECT ${INVITATION_COLUMNS} FROM invitations WHERE accepted_at IS NULL AND expires_at > now() ORDER BY created_at DESC`,
  );
}

/** Marks an open invitation accepted and returns it; undefined when unknown, used or expired. */
export async function acceptInvitation(tx: Transaction, tokenHash: string): Promise<Invitation | undefined> {
  const [row] = await tx.query<Invitation>(
    `UPDATE invitations SET accepted_at = now()
     WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > now() RETURNING ${INVITATION_COLUMNS}`,
    [tokenHash],
  );
  return row;
}
