import { duration, LimitArgumentError } from './arguments.ts';
import type { RateDecision, RateLimit } from './types.ts';

/**
 * GCRA in whole microseconds: each unit of cost moves the theoretical arrival time (TAT) on by one emission
 * interval, and the TAT may run ahead of now by at most `toleranceUs` (the burst). Integers keep the burst
 * exact: `burst` hits of cost 1 add up to the tolerance precisely, with no floating-point drift. The Redis
 * script does the same arithmetic in Lua.
 */
export interface GcraSteps {
  intervalUs: number;
  toleranceUs: number;
  incrementUs: number;
}

export function gcraSteps({ limit, windowMs, burst = limit }: RateLimit, cost: number): GcraSteps {
  if (!Number.isFinite(limit) || limit <= 0) throw new LimitArgumentError(`limit must be positive, got ${limit}`);
  duration('windowMs', windowMs);
  if (!Number.isFinite(burst) || burst < 1) throw new LimitArgumentError(`burst must be at least 1, got ${burst}`);
  if (!Number.isFinite(cost) || cost < 0) throw new LimitArgumentError(`cost must be zero or more, got ${cost}`);
  const intervalUs = Math.max(1, Math.round((windowMs * 1000) / limit));
  return { intervalUs, toleranceUs: Math.round(burst * intervalUs), incrementUs: Math.round(cost * intervalUs) };
}

/** The decision for a hit at `nowUs`, and the TAT to store when it is admitted. */
export function gcra(storedTatUs: number | undefined, nowUs: number, steps: GcraSteps): { decision: RateDecision; tatUs?: number } {
  const { intervalUs, toleranceUs, incrementUs } = steps;
  const tat = Math.max(storedTatUs ?? nowUs, nowUs);
  const remaining = (t: number) => Math.max(0, Math.floor((toleranceUs - (t - nowUs)) / intervalUs));
  const ms = (us: number) => Math.ceil(us / 1000);
  if (incrementUs > toleranceUs) return { decision: { allowed: false, remaining: remaining(tat), retryAfterMs: -1, resetMs: ms(tat - nowUs) } };
  const next = tat + incrementUs;
  const allowAt = next - toleranceUs;
  if (allowAt > nowUs) {
    return { decision: { allowed: false, remaining: remaining(tat), retryAfterMs: ms(allowAt - nowUs), resetMs: ms(tat - nowUs) } };
  }
  return { decision: { allowed: true, remaining: remaining(next), retryAfterMs: 0, resetMs: ms(next - nowUs) }, tatUs: next };
}
