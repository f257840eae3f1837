/** Sustained `limit` per `windowMs`, at most `burst` (default `limit`, at least 1) at once. */
export interface RateLimit {
  limit: number;
  windowMs: number;
  burst?: number;
}

/**
 * `resetMs`: until the limiter is fully replenished. A cost above the burst can never be admitted: it is
 * refused with `retryAfterMs` -1. `remaining` is -1 when the store could not be asked and failed open.
 */
export interface RateDecision {
  allowed: boolean;
  remaining: number;
  retryAfterMs: number;
  resetMs: number;
}

/** `remaining`: budget left after this reservation (or now, if refused). */
export interface Reservation {
  id: string;
  granted: boolean;
  remaining: number;
}

export interface Lease {
  id: string;
}

export interface ReserveOptions {
  periodTtlMs: number;
  reservationTtlMs: number;
}

export interface LimitStore {
  /** GCRA: admits `cost` (default 1) under `key` if within the limit; atomic across processes sharing the store. */
  hit(key: string, limit: RateLimit, cost?: number): Promise<RateDecision>;
  /**
   * Token budgets, reserve-then-settle: holds `amount` against `budget` for the key's period (the key expires
   * after periodTtlMs). A reservation not settled or released within reservationTtlMs lapses on its own (a
   * crashed holder).
   */
  reserve(key: string, amount: number, budget: number, options: ReserveOptions): Promise<Reservation>;
  /**
   * Replaces the reservation by the actual amount (which may exceed the estimate: consumption counts what
   * really happened). Unknown/lapsed reservation: the actual is still counted. Idempotent per reservation id.
   */
  settle(key: string, reservationId: string, actual: number): Promise<void>;
  /** Drops a reservation (the call failed). */
  release(key: string, reservationId: string): Promise<void>;
  /** Settled consumption plus live reservations. */
  consumed(key: string): Promise<number>;
  /**
   * Concurrency: a lease on one of `max` slots, held until released or until ttlMs passes without renewal.
   * null when all slots are held.
   */
  acquire(key: string, max: number, ttlMs: number): Promise<Lease | null>;
  renew(key: string, leaseId: string, ttlMs: number): Promise<boolean>;
  releaseLease(key: string, leaseId: string): Promise<void>;
  close(): Promise<void>;
}
