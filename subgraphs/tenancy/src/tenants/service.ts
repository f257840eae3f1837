import { randomUUID } from 'node:crypto';
import { OPERATOR_SCOPE, PLANS, TENANT_ISOLATIONS, type Principal } from '@jarvis/platform/contracts';
import { isUniqueViolation, type Database, type Transaction } from '@jarvis/platform/db';
import { conflict, forbidden, notFound } from '@jarvis/platform/errors';
import { checkInput, parseInput, tenantLoader } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { ChangeTenantPlanInput, CreateTenantInput } from '../generated/schema-types.ts';
import { assignRole } from '../access/store.ts';
import * as store from './store.ts';
import type { AuditEvent, Plan, Tenant, User } from './store.ts';

const slug = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'use 1-63 lower-case letters, digits and inner hyphens');
const displayName = z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters');

const createTenantInput = z.object({
  name: displayName,
  slug,
  plan: z.enum(PLANS).default('FREE'),
  isolation: z.enum(TENANT_ISOLATIONS).default('SHARED'),
  owner: z.object({ email: z.email().transform((email) => email.toLowerCase()), name: displayName }),
});

const changePlanChecks = z.object({ tenantId: z.uuid('must be a tenant id') });

/** Self-service sign-up gets these; anything else is the operator's to give. */
const SIGN_UP = { plan: 'FREE', isolation: 'SHARED' } as const;

const isOperator = (principal: Principal) => principal.scopes.includes(OPERATOR_SCOPE);

/** Tenants and their users. One instance per request: its loaders batch and cache for that request only. */
export class TenancyService {
  private readonly tenants;
  private readonly users;

  /** `unscoped` serves sign-up, which creates a tenant before anyone is signed in to it. */
  constructor(
    private readonly db: Database,
    private readonly unscoped: Database = db,
  ) {
    this.tenants = tenantLoader(db, async (tx, ids) => byId(await store.tenantsByIds(tx, ids)));
    this.users = tenantLoader(db, async (tx, ids) => byId(await store.usersByIds(tx, ids)));
  }

  tenant(id: string): Promise<Tenant | null> {
    return this.tenants.load({ tenantId: id, id });
  }

  /** The user's tenant, which exists as long as the user does. */
  async tenantOf(user: User): Promise<Tenant> {
    const tenant = await this.tenant(user.tenantId);
    if (!tenant) throw notFound('no such tenant');
    return tenant;
  }

  user(tenantId: string, id: string): Promise<User | null> {
    return this.users.load({ tenantId, id });
  }

  /** The member of the tenant with that slug who has that email (case-insensitive), if any: for sign-in. */
  async member(tenantSlug: string, email: string): Promise<User | undefined> {
    const tenantId = await this.tenantIdBySlug(tenantSlug);
    return tenantId ? this.db.withTenant(tenantId, (tx) => store.userByEmail(tx, email.toLowerCase())) : undefined;
  }

  private tenantIdBySlug(value: string): Promise<string | null> {
    return this.db.withoutTenant((tx) => store.tenantIdBySlug(tx, value));
  }

  usersOf(tenantId: string): Promise<User[]> {
    return this.db.withTenant(tenantId, (tx) => store.usersOfTenant(tx));
  }

  /**
   * A tenant with its first user, who holds the owner role. Anyone may sign up on the free plan with shared
   * isolation; another plan or dedicated schemas are the operator's act, and audited as such.
   */
  async createTenant(given: CreateTenantInput, principal: Principal): Promise<{ tenant: Tenant; owner: User }> {
    const input = parseInput(createTenantInput, given);
    const chosen = input.plan !== SIGN_UP.plan || input.isolation !== SIGN_UP.isolation;
    if (chosen && !isOperator(principal)) {
      throw forbidden(`sign-up gets the ${SIGN_UP.plan} plan and ${SIGN_UP.isolation} isolation; another plan or isolation is the operator's to give`);
    }
    const tenantId = randomUUID();
    try {
      return await this.unscoped.withTenant(tenantId, async (tx) => {
        const tenant = await store.insertTenant(tx, { id: tenantId, ...input, plan: input.plan as Plan });
        const owner = await store.insertUser(tx, { id: randomUUID(), tenantId, ...input.owner });
        await assignRole(tx, randomUUID(), tenantId, 'owner', { userId: owner.id });
        if (isOperator(principal)) await operatorAct(tx, tenantId, 'tenant.created', { plan: tenant.plan, isolation: tenant.isolation });
        return { tenant, owner };
      });
    } catch (error) {
      if (isUniqueViolation(error, 'tenants_slug_key')) throw conflict(`slug "${input.slug}" is taken`, 'slug');
      throw error;
    }
  }

  /** The operator moves a tenant to another plan; its members' next tokens carry it. Audited. */
  async changePlan(given: ChangeTenantPlanInput, principal: Principal): Promise<Tenant> {
    if (!isOperator(principal)) throw forbidden("changing a tenant's plan is the operator's act");
    const { tenantId, plan } = checkInput(changePlanChecks, given);
    return this.unscoped.withTenant(tenantId, async (tx) => {
      const from = await store.changePlan(tx, tenantId, plan);
      if (!from) throw notFound('no such tenant');
      await operatorAct(tx, tenantId, 'tenant.plan_changed', { from, to: plan });
      const [tenant] = await store.tenantsByIds(tx, [tenantId]);
      return tenant!;
    });
  }

  /** What the operator did to the tenant, oldest first. */
  auditEvents(tenantId: string): Promise<AuditEvent[]> {
    return this.db.withTenant(tenantId, (tx) => store.auditEvents(tx));
  }
}

async function operatorAct(tx: Transaction, tenantId: string, action: string, detail: Record<string, unknown>) {
  await store.recordAudit(tx, tenantId, { id: randomUUID(), action, actor: 'operator', detail });
}

function byId<T extends { id: string }>(rows: T[]): Map<string, T> {
  return new Map(rows.map((row) => [row.id, row]));
}
