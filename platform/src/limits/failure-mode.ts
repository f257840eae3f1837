import { randomUUID } from 'node:crypto';
import { occasionalWarning, type Logger } from '../logger.ts';
import { duration, LimitArgumentError, newReservationId } from './arguments.ts';
import type { LimitStore, RateDecision } from './types.ts';

/** What limits do while their store cannot be asked: `open` admits, `closed` refuses. */
export type LimitFailureMode = 'open' | 'closed';

const REFUSED_FOR_MS = 1_000;

const FALLBACK_HIT: Record<LimitFailureMode, RateDecision> = {
  open: { allowed: true, remaining: -1, retryAfterMs: 0, resetMs: 0 },
  closed: { allowed: false, remaining: 0, retryAfterMs: REFUSED_FOR_MS, resetMs: REFUSED_FOR_MS },
};

/**
 * Answers for the store while it fails. Settling, releasing and renewing become no-ops in either mode: an
 * outage refuses new work in `closed` mode but does not cut work already admitted, and the first renewal
 * that reaches Redis again tells the truth. `consumed` has no safe answer, so its error reaches the caller.
 */
export function withFailureMode(store: LimitStore, mode: LimitFailureMode, warn: (error: unknown) => void): LimitStore {
  const open = mode === 'open';
  const guard = async <T>(call: () => Promise<T>, fallback: () => T): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      if (error instanceof LimitArgumentError) throw error;
      warn(error);
      return fallback();
    }
  };
  return {
    hit: (key, limit, cost) => guard(() => store.hit(key, limit, cost), () => ({ ...FALLBACK_HIT[mode] })),
    reserve: (key, amount, budget, options) =>
      guard(
        () => store.reserve(key, amount, budget, options),
        () => ({ id: newReservationId(duration('periodTtlMs', options.periodTtlMs)), granted: open, remaining: open ? -1 : 0 }),
      ),
    settle: (key, reservationId, actual) => guard(() => store.settle(key, reservationId, actual), () => undefined),
    release: (key, reservationId) => guard(() => store.release(key, reservationId), () => undefined),
    consumed: (key) => store.consumed(key),
    acquire: (key, max, ttlMs) => guard(() => store.acquire(key, max, ttlMs), () => (open ? { id: randomUUID() } : null)),
    renew: (key, leaseId, ttlMs) => guard(() => store.renew(key, leaseId, ttlMs), () => true),
    releaseLease: (key, leaseId) => guard(() => store.releaseLease(key, leaseId), () => undefined),
    close: () => store.close(),
  };
}

/** The limit store's outage warning, now and then (logger.ts occasionalWarning). */
export function limitStoreWarning(log: Pick<Logger, 'warn'>, mode: LimitFailureMode): (error: unknown) => void {
  const consequence = mode === 'open' ? 'admitting everything' : 'refusing rate-limited work';
  return occasionalWarning(log, `limit store unavailable; failing ${mode}, ${consequence} until it answers`);
}
