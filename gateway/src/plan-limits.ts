import { OPERATOR_SCOPE, PLAN_QUOTAS, type Principal } from '@jarvis/platform/contracts';
import { rateLimited } from '@jarvis/platform/errors';
import type { LimitStore, RateDecision } from '@jarvis/platform/limits';
import type { GatewayPolicy } from './pipeline/policy.ts';

/** The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) for the tightest limit that applied. */
export type RateLimitHeaders = Record<'ratelimit-limit' | 'ratelimit-remaining' | 'ratelimit-reset', string>;

/** What one client address without credentials may ask of the gateway. */
export interface AnonymousRate {
  perSecond: number;
  burst: number;
}

interface Check {
  key: string;
  perSecond: number;
  burst: number;
  refusal: string;
}

/**
 * The request rate, checked before anything else runs: the plan's, per tenant and per API key, for signed-in
 * callers; per client address for anonymous ones. Over it, the whole request is refused (RATE_LIMITED, HTTP 429
 * with Retry-After). Counters live in the shared limit store, so the rate holds across gateway replicas. The
 * operator's credential is the deployment's own and has no rate.
 */
export function planLimiter(store: LimitStore, anonymous: AnonymousRate) {
  return async function admit(principal: Principal, ip: string): Promise<RateLimitHeaders | undefined> {
    const checks = checksFor(principal, ip, anonymous);
    if (checks.length === 0) return undefined;
    // The narrower key first, so a refused key does not spend its tenant's allowance.
    let tightest: { burst: number; decision: RateDecision } | undefined;
    for (const check of checks) {
      const decision = await store.hit(check.key, { limit: check.perSecond, windowMs: 1000, burst: check.burst });
      if (!decision.allowed) throw rateLimited(check.refusal, decision.retryAfterMs);
      if (!tightest || decision.remaining < tightest.decision.remaining) tightest = { burst: check.burst, decision };
    }
    return {
      'ratelimit-limit': String(tightest!.burst),
      'ratelimit-remaining': String(Math.max(0, tightest!.decision.remaining)),
      'ratelimit-reset': String(Math.ceil(tightest!.decision.resetMs / 1000)),
    };
  };
}

export type Admit = ReturnType<typeof planLimiter>;

/** The plan's rate as a gateway policy: admission, with the RateLimit headers of the tightest limit. */
export function planRatePolicy(admit: Admit): GatewayPolicy {
  return { name: 'plan rate', admit: ({ principal, ip }) => admit(principal, ip) };
}

function checksFor(principal: Principal, ip: string, anonymous: AnonymousRate): Check[] {
  if (principal.scopes.includes(OPERATOR_SCOPE)) return [];
  if (!principal.tenantId) {
    return [{ key: `anonymous:ip:${ip}`, ...anonymous, refusal: 'too many requests without credentials from this address' }];
  }
  // A token of the deployment's own issuer may name no plan: its rate is that issuer's business.
  if (!principal.plan) return [];
  const quota = PLAN_QUOTAS[principal.plan];
  const refusal = `the ${principal.plan} plan's request rate is used up`;
  const tenant = { key: `plan:tenant:${principal.tenantId}`, perSecond: quota.requestsPerSecond, burst: quota.burst, refusal };
  if (!principal.apiKeyId) return [tenant];
  return [{ key: `plan:key:${principal.apiKeyId}`, perSecond: quota.apiKeyRequestsPerSecond, burst: quota.apiKeyBurst, refusal }, tenant];
}
