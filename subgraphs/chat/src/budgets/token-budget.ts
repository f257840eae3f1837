/**
 * The token budgets every model call of the chat subgraph is made within, answers (answers/generate.ts) and
 * completions (completions/service.ts) alike, under the same keys so both draw on one budget: the tenant's
 * tokens for the UTC day and month and, for a member, the member's for the day — its own allowance, or the
 * tenant's daily budget when it has none. A member's tokens are always counted, so an allowance set during the
 * day already sees what the member used that day. Each is reserved before the model call and settled with what
 * it used (released when it used nothing). An answer also holds one of the tenant's concurrent-answer slots.
 *
 * A refusal is QUOTA_EXCEEDED with `retryAfter`: the seconds until the refusing budget's period ends (a slot: a
 * moment).
 */
import { ErrorCode, rateLimited, type AppError } from '@jarvis/platform/errors';
import type { LimitStore } from '@jarvis/platform/limits';

const DAY_MS = 86_400_000;
/** How soon a refused concurrent answer may be tried again: answers end all the time. */
const SLOT_RETRY_MS = 1_000;

/** Daily and monthly token budgets and concurrent answers, from the tenant's plan and its own lower quota. */
export interface TokenQuota {
  tokensPerDay: number;
  tokensPerMonth: number;
  concurrentStreams: number;
  /** The calling member's own daily allowance (setMemberAllowance); null when it has none. */
  memberTokensPerDay: number | null;
}

export interface TokenBudgetOptions {
  tenantId: string;
  /** The member whose call it is; none for a service account. */
  memberId: string | undefined;
  quota: TokenQuota;
  limits: LimitStore;
  /** Told the name of each limit that refuses (`tokens_per_day`, …), for the rejections metric. */
  refused: (limit: string) => void;
  now?: Date;
}

export interface TokenBudget {
  /** Takes one of the tenant's concurrent-answer slots; QUOTA_EXCEEDED when none is free. */
  openStream(): Promise<void>;
  /** Reserves `tokens` against every budget in turn; QUOTA_EXCEEDED at the first that cannot hold them. */
  reserve(tokens: number): Promise<void>;
  /** Settles what was reserved with what was used (nothing: released) and frees the slot, all at once; once. */
  close(used: number): Promise<void>;
}

interface Budget {
  key: string;
  limit: number;
  ttlMs: number;
  /** The limit's name in the rejections metric. */
  name: string;
  /** What the caller is told when the budget refuses. */
  refusal: string;
  /** When the budget's period ends. */
  endsAt: number;
}

export function tokenBudget({ tenantId, memberId, quota, limits, refused, now = new Date() }: TokenBudgetOptions): TokenBudget {
  const iso = now.toISOString();
  const { tokensPerDay, tokensPerMonth, memberTokensPerDay } = quota;
  const nextDay = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  const nextMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  const budgets: Budget[] = [
    { key: `chat:tokens:day:${tenantId}:${iso.slice(0, 10)}`, limit: tokensPerDay, ttlMs: 2 * DAY_MS, name: 'tokens_per_day', refusal: `the tenant's ${tokensPerDay} tokens a day are used up`, endsAt: nextDay },
    { key: `chat:tokens:month:${tenantId}:${iso.slice(0, 7)}`, limit: tokensPerMonth, ttlMs: 32 * DAY_MS, name: 'tokens_per_month', refusal: `the tenant's ${tokensPerMonth} tokens a month are used up`, endsAt: nextMonth },
  ];
  if (memberId) {
    // Budgets count whole tokens.
    const allowance = Math.floor(memberTokensPerDay ?? tokensPerDay);
    const key = `chat:tokens:member-day:${tenantId}:${memberId}:${iso.slice(0, 10)}`;
    budgets.push({ key, limit: allowance, ttlMs: 2 * DAY_MS, name: 'member_tokens_per_day', refusal: `your ${allowance} tokens a day are used up`, endsAt: nextDay });
  }
  const streamsKey = `chat:streams:${tenantId}`;
  const reservations: { key: string; id: string }[] = [];
  let lease: string | undefined;
  const refuse = (limit: string, message: string, retryAfterMs: number): AppError => {
    refused(limit);
    return rateLimited(message, retryAfterMs, ErrorCode.QUOTA_EXCEEDED);
  };
  return {
    async openStream() {
      // A tenant may allow itself no answers at all; a store has no slots to count then.
      const granted = quota.concurrentStreams > 0 ? await limits.acquire(streamsKey, quota.concurrentStreams, 120_000) : null;
      if (!granted) throw refuse('concurrent_answers', `the tenant may have ${quota.concurrentStreams} answers generated at once`, SLOT_RETRY_MS);
      lease = granted.id;
    },
    async reserve(tokens: number) {
      for (const budget of budgets) {
        const granted = await limits.reserve(budget.key, tokens, budget.limit, { periodTtlMs: budget.ttlMs, reservationTtlMs: 300_000 });
        if (!granted.granted) throw refuse(budget.name, budget.refusal, budget.endsAt - Date.now());
        reservations.push({ key: budget.key, id: granted.id });
      }
    },
    async close(used: number) {
      const settling = reservations.splice(0).map(({ key, id }) => (used > 0 ? limits.settle(key, id, used) : limits.release(key, id)));
      const held = lease;
      lease = undefined;
      const results = await Promise.allSettled([...settling, ...(held ? [limits.releaseLease(streamsKey, held)] : [])]);
      const failure = results.find((result) => result.status === 'rejected');
      if (failure) throw failure.reason;
    },
  };
}
