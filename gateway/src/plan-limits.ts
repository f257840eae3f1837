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
    const key = principal.apiKeyId
      ? await check(`plan:key:${principal.apiKeyId}`, quota.apiKeyRequestsPerSecond, quota.apiKeyBurst, principal)
      : undefined;
    const tenant = await check(`plan:tenant:${principal.tenantId}`, quota.requestsPerSecond, quota.burst, principal);
    const tightest = key && key.decision.remaining < tenant.decision.remaining ? key : tenant;
    return {
      'ratelimit-limit': String(tightest.burst),
      'ratelimit-remaining': String(Math.max(0, tightest.decision.remaining)),
      'ratelimit-reset': String(Math.ceil(tightest.decision.resetMs / 1000)),
    };
  };

  async function check(key: string, perSecond: number, burst: number, principal: Principal): Promise<{ burst: number; decision: RateDecision }> {
    const decision = await store.hit(key, { limit: perSecond, windowMs: 1000, burst });
    if (!decision.allowed) throw rateLimited(`the ${principal.plan} plan's request rate is used up`, decision.retryAfterMs);
    return { burst, decision };
  }
}
