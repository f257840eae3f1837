import { randomUUID } from 'node:crypto';
import { API_KEY_PREFIX } from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { badUserInput, conflict } from '@jarvis/platform/errors';
import { z } from 'zod';
import { checkInput } from '@jarvis/platform/subgraph';
import type { AcceptInvitationInput } from '../generated/schema-types.ts';
import * as users from '../tenants/store.ts';
import { tenantsByIds, type User } from '../tenants/store.ts';
import { INVITATION_PREFIX, parseTenantSecret } from '../secrets.ts';
import { accessFromRoles, roleExists, userAccess } from './roles.ts';
import * as store from './store.ts';

const acceptChecks = z.object({ name: z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters') });

/**
 * The public side, before a tenant is known: accepting an invitation and authenticating an API key. Runs on
 * the unscoped database, confined to the tenant named in the presented secret.
 */
export class Credentials {
  constructor(private readonly db: Database) {}

  async acceptInvitation(given: AcceptInvitationInput): Promise<User> {
    const input = checkInput(acceptChecks, given);
    const parsed = parseTenantSecret(INVITATION_PREFIX, input.token);
    if (!parsed) throw badUserInput('this invitation is not valid', 'token');
    return this.db.withTenant(parsed.tenantId, async (tx) => {
      const invitation = await store.acceptInvitation(tx, parsed.hash);
      if (!invitation) throw badUserInput('this invitation is unknown, used or expired', 'token');
      if (!(await roleExists(tx, invitation.role))) throw badUserInput(`the role of this invitation, "${invitation.role}", no longer exists`, 'token');
      if (await users.userByEmail(tx, invitation.email)) throw conflict(`${invitation.email} is a member already`, 'email');
      const user = await users.insertUser(tx, { id: randomUUID(), tenantId: parsed.tenantId, email: invitation.email, name: input.name });
      await store.assignRole(tx, randomUUID(), parsed.tenantId, invitation.role, { userId: user.id });
      return user;
    });
  }

  /**
   * What a member may do — its roles, plus any an external issuer's claims map to — and where its tenant's
   * data lives: the claims of its access tokens.
   */
  async userClaims(tenantId: string, userId: string, mappedRoles: string[] = []) {
    return this.db.withTenant(tenantId, async (tx) => {
      const [tenant] = await tenantsByIds(tx, [tenantId]);
      if (!tenant) return undefined;
      return { isolation: tenant.isolation, plan: tenant.plan, ...(await userAccess(tx, userId, mappedRoles)) };
    });
  }

  /** The service account behind a live API key, with the key's scopes; undefined when it is not one. */
  async authenticateApiKey(key: string) {
    const parsed = parseTenantSecret(API_KEY_PREFIX, key);
    if (!parsed) return undefined;
    return this.db.withTenant(parsed.tenantId, async (tx) => {
      const apiKey = await store.useApiKey(tx, parsed.hash);
      if (!apiKey) return undefined;
      const [tenant] = await tenantsByIds(tx, [parsed.tenantId]);
      const access = await accessFromRoles(tx, await store.serviceAccountRoles(tx, apiKey.serviceAccountId));
      return { apiKey, isolation: tenant!.isolation, plan: tenant!.plan, ...access };
    });
  }
}
