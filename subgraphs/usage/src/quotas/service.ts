import {
  allowanceChangedEvent,
  ALLOWANCE_TOPIC,
  badUserInput,
  effectiveQuota,
  quotaOverrides,
  forbidden,
  parseInput,
  PLAN_QUOTAS,
  quotaChangedEvent,
  QUOTA_TOPIC,
  requirePermission,
  writeEvent,
  type Database,
  type Principal,
  type Quota,
  type QuotaOverrides,
} from '@jarvis/platform';
import { z } from 'zod';
import * as store from './store.ts';

export interface QuotaView {
  plan: string;
  planLimits: Quota;
  /** The plan's limits, lowered where the tenant chose to. */
  limits: Quota;
  tokensToday: number;
  tokensThisMonth: number;
  storageBytes: number;
  memberAllowances: { userId: string; tenantId: string; tokensPerDay: number; usedToday: number }[];
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
    requirePermission(this.principal, 'usage:read');
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
  async setQuota(rawInput: unknown): Promise<QuotaView> {
    const tenantId = requirePermission(this.principal, 'tenant:admin');
    const input = parseInput(setQuotaInput, rawInput);
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
    return this.quota(tenantId);
  }

  /** A member's own daily token allowance inside the tenant's; null removes it. Announced to chat, which enforces it. */
  async setMemberAllowance(rawInput: unknown): Promise<QuotaView> {
    const tenantId = requirePermission(this.principal, 'tenant:admin');
    const input = parseInput(allowanceInput, rawInput);
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
    return this.quota(tenantId);
  }

  private plan() {
    if (!this.principal.plan) throw forbidden('the caller carries no plan');
    return this.principal.plan;
  }
}

const sum = (rows: { tokens: number }[]) => rows.reduce((total, row) => total + Number(row.tokens), 0);
