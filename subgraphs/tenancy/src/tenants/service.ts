import { randomUUID } from 'node:crypto';
import { conflict, isUniqueViolation, parseInput, TENANT_ISOLATIONS, tenantLoader, type Database } from '@jarvis/platform';
import { z } from 'zod';
import { assignRole } from '../access/store.ts';
import * as store from './store.ts';
import type { Plan, Tenant, User } from './store.ts';

const slug = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'use 1-63 lower-case letters, digits and inner hyphens');
const displayName = z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters');

const createTenantInput = z.object({
  name: displayName,
  slug,
  plan: z.enum(['FREE', 'TEAM', 'ENTERPRISE']).default('FREE'),
  isolation: z.enum(TENANT_ISOLATIONS).default('SHARED'),
  owner: z.object({ email: z.email().transform((email) => email.toLowerCase()), name: displayName }),
});

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

  async createTenant(rawInput: unknown): Promise<{ tenant: Tenant; owner: User }> {
    const input = parseInput(createTenantInput, rawInput);
    const tenantId = randomUUID();
    try {
      return await this.unscoped.withTenant(tenantId, async (tx) => {
        const tenant = await store.insertTenant(tx, { id: tenantId, ...input, plan: input.plan as Plan });
        const owner = await store.insertUser(tx, { id: randomUUID(), tenantId, ...input.owner });
        await assignRole(tx, randomUUID(), tenantId, 'owner', { userId: owner.id });
        return { tenant, owner };
      });
    } catch (error) {
      if (isUniqueViolation(error, 'tenants_slug_key')) throw conflict(`slug "${input.slug}" is taken`, 'slug');
      throw error;
    }
  }
}

function byId<T extends { id: string }>(rows: T[]): Map<string, T> {
  return new Map(rows.map((row) => [row.id, row]));
}
