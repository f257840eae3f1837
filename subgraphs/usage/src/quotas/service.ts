import {
  allowanceChangedEvent,
  ALLOWANCE_TOPIC,
  effectiveQuota,
  PLAN_QUOTAS,
  quotaChangedEvent,
  QUOTA_TOPIC,
  requirePermission,
  requireTenant,
  type Principal,
  type Quota,
  type QuotaOverrides,
} from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { badUserInput, forbidden } from '@jarvis/platform/errors';
import { writeEvent } from '@jarvis/platform/outbox';
import { quotaOverrides } from '@jarvis/platform/quota-overrides';
import { parseInput } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { MemberAllowanceInput, SetQuotaInput } from '../generated/schema-types.ts';
import * as store from './store.ts';
import type { MemberAllowance } from './store.ts';

export interface QuotaView {
  plan: string;
  planLimits: Quota;
  /** The plan's limits, lowered where the tenant chose to. */
  limits: Quota;
  tokensToday: number;
  tokensThisMonth: number;
  storageBytes: number;
  memberAllowances: MemberAllowanceView[];
}

export interface MemberAllowanceView extends MemberAllowance {
  usedToday: number;
}

/** Tokens and bytes are counted whole, and the services enforcing a limit keep it as a whole number. */
const limit = z.number().int('must be a whole number').nonnegative('must not be negative').nullish();
const setQuotaInput = z.object({
  tokensPerDay: limit,
  tokensPerMonth: limit,
  storageBytes: limit,
  concurrentStreams: z.number().int().nonnegative('must not be negative').nullish(),
});
const allowanceInput = z.object({ userId: z.uuid('must be a user id'), tokensPerDay: limit });

const startOfDay = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
const startOfMonth = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));

/**
 * A tenant's quotas: its plan's limits (the plan is in the caller's signed principal), lowered where the
 * tenant's admins chose to, per-member token allowances, and what has been used against them.
 */
export class QuotaService {
  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly outbox: { notify(): void },
  ) {}

  async quota(tenantId: string): Promise<QuotaView> {
    const plan = this.plan();
    const now = new Date();
    return this.db.withTenant(tenantId, async (tx) => {
      // One after another: a transaction is one connection, which runs one statement at a time anyway.
      const overrides = await quotaOverrides(tx);
      const allowances = await store.allowances(tx);
      const today = await store.tokensSince(tx, startOfDay(now));
      const month = await store.tokensSince(tx, startOfMonth(now));
      const storageBytes = await store.storageRecorded(tx);
      const usedToday = new Map(today.map((row) => [row.userId, row.tokens]));
      return {
        plan,
        planLimits: PLAN_QUOTAS[plan],
        limits: effectiveQuota(PLAN_QUOTAS[plan], overrides),
        tokensToday: sum(today),
        tokensThisMonth: sum(month),
        storageBytes,
        memberAllowances: allowances.map((a) => ({ ...a, usedToday: usedToday.get(a.userId) ?? 0 })),
      };
    });
  }

  /** Lowers (or, with null, restores) the tenant's limits; a plan's limit cannot be raised here. */
  async setQuota(given: SetQuotaInput): Promise<QuotaView> {
    const tenantId = requireTenant(this.principal);
    const input = parseInput(setQuotaInput, given);
    const planLimits = PLAN_QUOTAS[this.plan()];
    const values: QuotaOverrides = {
      tokensPerDay: input.tokensPerDay ?? null,
      tokensPerMonth: input.tokensPerMonth ?? null,
      storageBytes: input.storageBytes ?? null,
      concurrentStreams: input.concurrentStreams ?? null,
    };
    for (const [field, value] of Object.entries(values) as [keyof QuotaOverrides, number | null][]) {
      if (value !== null && value > planLimits[field]) {
        throw badUserInput(`${field} cannot exceed the plan's ${planLimits[field]}; a higher limit needs another plan`, field);
      }
    }
    // Announced in the same transaction: the services that enforce a limit learn of every change that commits.
    await this.db.withTenant(tenantId, async (tx) => {
      await store.saveOverrides(tx, tenantId, values);
      await writeEvent(tx, QUOTA_TOPIC, quotaChangedEvent(tenantId, { ...values, isolation: this.principal.isolation }));
    });
    this.outbox.notify();
    return this.quotaAfterChange(tenantId);
  }

  /** A member's own daily token allowance inside the tenant's; null removes it. Announced to chat, which enforces it. */
  async setMemberAllowance(given: MemberAllowanceInput): Promise<QuotaView> {
    const tenantId = requireTenant(this.principal);
    const input = parseInput(allowanceInput, given);
    const tokensPerDay = input.tokensPerDay ?? null;
    await this.db.withTenant(tenantId, async (tx) => {
      if (tokensPerDay === null) await store.removeAllowance(tx, input.userId);
      else {
        const ceiling = effectiveQuota(PLAN_QUOTAS[this.plan()], await quotaOverrides(tx)).tokensPerDay;
        if (tokensPerDay > ceiling) throw badUserInput(`a member's allowance cannot exceed the tenant's ${ceiling} tokens a day`, 'tokensPerDay');
        await store.saveAllowance(tx, { tenantId, userId: input.userId, tokensPerDay });
      }
      const change = { userId: input.userId, tokensPerDay, isolation: this.principal.isolation };
      await writeEvent(tx, ALLOWANCE_TOPIC, allowanceChangedEvent(tenantId, change));
    });
    this.outbox.notify();
    return this.quotaAfterChange(tenantId);
  }

  /** What a change answers: the quota and what was used against it, which needs usage:read besides the change's own permission. */
  private quotaAfterChange(tenantId: string): Promise<QuotaView> {
    requirePermission(this.principal, 'usage:read');
    return this.quota(tenantId);
  }

  private plan() {
    if (!this.principal.plan) throw forbidden('the caller carries no plan');
    return this.principal.plan;
  }
}

const sum = (rows: { tokens: number }[]) => rows.reduce((total, row) => total + Number(row.tokens), 0);
