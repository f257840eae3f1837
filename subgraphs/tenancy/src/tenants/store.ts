import type { Plan, TenantIsolation } from '@jarvis/platform/contracts';
import type { Transaction } from '@jarvis/platform/db';

export type { Plan };

export interface Tenant {
  id: string;
  name: string;
  slug: string;
  plan: Plan;
  isolation: TenantIsolation;
  createdAt: Date;
}

export interface User {
  id: string;
  tenantId: string;
  email: string;
  name: string;
  createdAt: Date;
}

const TENANT_COLUMNS = `id, name, slug, plan, isolation, created_at AS "createdAt"`;
const USER_COLUMNS = `id, tenant_id AS "tenantId", email, name, created_at AS "createdAt"`;

export async function insertTenant(tx: Transaction, tenant: Omit<Tenant, 'createdAt'>): Promise<Tenant> {
  const [row] = await tx.query<Tenant>(
    `INSERT INTO tenants (id, name, slug, plan, isolation) VALUES ($1, $2, $3, $4, $5) RETURNING ${TENANT_COLUMNS}`,
    [tenant.id, tenant.name, tenant.slug, tenant.plan, tenant.isolation],
  );
  return row!;
}

export async function insertUser(tx: Transaction, user: Omit<User, 'createdAt'>): Promise<User> {
  const [row] = await tx.query<User>(
    `INSERT INTO users (id, tenant_id, email, name) VALUES ($1, $2, $3, $4) RETURNING ${USER_COLUMNS}`,
    [user.id, user.tenantId, user.email, user.name],
  );
  return row!;
}

export function tenantsByIds(tx: Transaction, ids: string[]): Promise<Tenant[]> {
  return tx.query<Tenant>(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE id = ANY($1::uuid[])`, [ids]);
}

export function usersByIds(tx: Transaction, ids: string[]): Promise<User[]> {
  return tx.query<User>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ANY($1::uuid[])`, [ids]);
}

export async function userByEmail(tx: Transaction, email: string): Promise<User | undefined> {
  const [row] = await tx.query<User>(`SELECT ${USER_COLUMNS} FROM users WHERE email = $1`, [email]);
  return row;
}

export function usersOfTenant(tx: Transaction): Promise<User[]> {
  return tx.query<User>(`SELECT ${USER_COLUMNS} FROM users ORDER BY created_at, email`);
}

/** The plan the transaction's tenant had, now replaced by `plan`; undefined when there is no such tenant. */
export async function changePlan(tx: Transaction, tenantId: string, plan: Plan): Promise<Plan | undefined> {
  const [old] = await tx.query<{ plan: Plan }>(`SELECT plan FROM tenants WHERE id = $1 FOR UPDATE`, [tenantId]);
  if (!old) return undefined;
  await tx.query(`UPDATE tenants SET plan = $2 WHERE id = $1`, [tenantId, plan]);
  return old.plan;
}

export interface AuditEvent {
  id: string;
  action: string;
  actor: string;
  detail: Record<string, unknown>;
  at: Date;
}

export async function recordAudit(tx: Transaction, tenantId: string, event: Omit<AuditEvent, 'at'>): Promise<void> {
  await tx.query(`INSERT INTO tenant_audit (id, tenant_id, action, actor, detail) VALUES ($1, $2, $3, $4, $5)`, [
    event.id,
    tenantId,
    event.action,
    event.actor,
    JSON.stringify(event.detail),
  ]);
}

export function auditEvents(tx: Transaction): Promise<AuditEvent[]> {
  return tx.query<AuditEvent>(`SELECT id, action, actor, detail, at FROM tenant_audit ORDER BY at, id`);
}

export async function tenantIdBySlug(tx: Transaction, slug: string): Promise<string | null> {
  const [row] = await tx.query<{ id: string | null }>(`SELECT tenant_id_by_slug($1) AS id`, [slug]);
  return row?.id ?? null;
}
