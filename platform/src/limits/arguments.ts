import { randomUUID } from 'node:crypto';

/** A caller's mistake, not an outage: failure modes never swallow it. */
export class LimitArgumentError extends RangeError {
  override name = 'LimitArgumentError';
}

/** A count of tokens or slots: stores keep them as integers so sums stay exact. */
export function wholeNumber(name: string, value: number, min = 0): number {
  if (!Number.isSafeInteger(value) || value < min) throw new LimitArgumentError(`${name} must be an integer of at least ${min}, got ${value}`);
  return value;
}

/** A duration in whole milliseconds, as PEXPIRE takes it. */
export function duration(name: string, ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new LimitArgumentError(`${name} must be a positive number of milliseconds, got ${ms}`);
  return Math.ceil(ms);
}

/**
 * A reservation id carries its period's length, so a settle that arrives after the period's key expired
 * starts the next period with the right expiry instead of leaving a key that never expires.
 */
export function newReservationId(periodTtlMs: number): string {
  return `${randomUUID()}.${periodTtlMs}`;
}

export function periodTtlOf(reservationId: string): number {
  const ttl = Number(reservationId.slice(reservationId.lastIndexOf('.') + 1));
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new LimitArgumentError(`not a reservation id of a limit store: ${reservationId}`);
  return ttl;
}
