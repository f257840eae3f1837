import { PLAN_QUOTAS, rateLimited, type LimitStore, type Principal, type RateDecision } from '@jarvis/platform';

/** The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) for the tightest limit that applied. */
export type RateLimitHeaders = Record<'ratelimit-limit' | 'ratelimit-remaining' | 'ratelimit-reset', string>;

/**
 * The plan's request rate, per tenant and per API key, checked before anything else runs: over it, the
 * whole request is refused (RATE_LIMITED, HTTP 429 with Retry-After). Counters live in the shared limit store,
 * so the rate holds across gateway replicas. Anonymous callers have no plan; field limits cover them.
 */
export function planLimiter(store: LimitStore) {
  return async function admit(principal: Principal): Promise<RateLimitHeaders | undefined> {
    if (!principal.tenantId || !principal.plan) return undefined;
    const quota = PLAN_QUOTAS[principal.plan];
    // The narrower key first, so a refused key does not spend its tenant's allowance.
    const checks: { limit: number; decision: RateDecision }[] = [];
    if (principal.apiKeyId) {
      const limit = { limit: quota.apiKeyRequestsPerSecond, windowMs: 1000, burst: quota.apiKeyBurst };
      checks.push({ limit: limit.burst, decision: await store.hit(`plan:key:${principal.apiKeyId}`, limit) });
    }
    if (checks.every((check) => check.decision.allowed)) {
      const limit = { limit: quota.requestsPerSecond, windowMs: 1000, burst: quota.burst };
      checks.push({ limit: limit.burst, decision: await store.hit(`plan:tenant:${principal.tenantId}`, limit) });
    }
    const refused = checks.find((check) => !check.decision.allowed);
    if (refused) throw rateLimited(`the ${principal.plan} plan's request rate is used up`, refused.decision.retryAfterMs);
    const tightest = checks.reduce((a, b) => (b.decision.remaining < a.decision.remaining ? b : a));
    return {
      'ratelimit-limit': String(tightest.limit),
      'ratelimit-remaining': String(Math.max(0, tightest.decision.remaining)),
      'ratelimit-reset': String(Math.ceil(tightest.decision.resetMs / 1000)),
    };
  };
}
