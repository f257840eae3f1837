import { randomUUID } from 'node:crypto';
import { duration, newReservationId, periodTtlOf, wholeNumber } from './arguments.ts';
import { gcra, gcraSteps } from './gcra.ts';
import type { Lease, LimitStore, RateDecision, RateLimit, Reservation, ReserveOptions } from './types.ts';

interface Hold {
  amount: number;
  expiresAt: number;
}

interface Period {
  expiresAt: number;
  settled: number;
  held: number;
  holds: Map<string, Hold>;
  settledIds: Set<string>;
}

/** Expired entries are swept on the first call after this interval, so no timer keeps the process alive. */
const SWEEP_EVERY_MS = 60_000;

/** The limits port in one process, with the Redis store's semantics; the embedded default. */
export class MemoryLimitStore implements LimitStore {
  private readonly tats = new Map<string, number>();
  private readonly periods = new Map<string, Period>();
  private readonly leases = new Map<string, Map<string, number>>();
  private nextSweep: number;

  /** `clock` tells the time in milliseconds (fractions welcome); tests may pass their own. */
  constructor(private readonly clock: () => number = Date.now) {
    this.nextSweep = clock() + SWEEP_EVERY_MS;
  }

  async hit(key: string, limit: RateLimit, cost = 1): Promise<RateDecision> {
    const steps = gcraSteps(limit, cost);
    const { decision, tatUs } = gcra(this.tats.get(key), Math.round(this.now() * 1000), steps);
    if (tatUs !== undefined) this.tats.set(key, tatUs);
    return decision;
  }

  async reserve(key: string, amount: number, budget: number, options: ReserveOptions): Promise<Reservation> {
    wholeNumber('amount', amount);
    wholeNumber('budget', budget);
    const periodTtl = duration('periodTtlMs', options.periodTtlMs);
    const holdTtl = duration('reservationTtlMs', options.reservationTtlMs);
    const now = this.now();
    const id = newReservationId(periodTtl);
    const used = consumption(this.livePeriod(key, now));
    if (used + amount > budget) return { id, granted: false, remaining: Math.max(0, budget - used) };
    const period = this.openPeriod(key, now, periodTtl);
    period.holds.set(id, { amount, expiresAt: now + holdTtl });
    period.held += amount;
    return { id, granted: true, remaining: budget - used - amount };
  }

  async settle(key: string, reservationId: string, actual: number): Promise<void> {
    wholeNumber('actual', actual);
    const period = this.openPeriod(key, this.now(), periodTtlOf(reservationId));
    if (period.settledIds.has(reservationId)) return;
    dropHold(period, reservationId);
    period.settled += actual;
    period.settledIds.add(reservationId);
  }

  async release(key: string, reservationId: string): Promise<void> {
    const period = this.livePeriod(key, this.now());
    if (period) dropHold(period, reservationId);
  }

  async consumed(key: string): Promise<number> {
    return consumption(this.livePeriod(key, this.now()));
  }

  async acquire(key: string, max: number, ttlMs: number): Promise<Lease | null> {
    wholeNumber('max', max, 1);
    const ttl = duration('ttlMs', ttlMs);
    const now = this.now();
    const holders = this.liveLeases(key, now);
    if (holders.size >= max) return null;
    const id = randomUUID();
    holders.set(id, now + ttl);
    return { id };
  }

  async renew(key: string, leaseId: string, ttlMs: number): Promise<boolean> {
    const ttl = duration('ttlMs', ttlMs);
    const now = this.now();
    const holders = this.liveLeases(key, now);
    if (!holders.has(leaseId)) return false;
    holders.set(leaseId, now + ttl);
    return true;
  }

  async releaseLease(key: string, leaseId: string): Promise<void> {
    this.leases.get(key)?.delete(leaseId);
  }

  async close(): Promise<void> {
    this.tats.clear();
    this.periods.clear();
    this.leases.clear();
  }

  private now(): number {
    const now = this.clock();
    if (now >= this.nextSweep) this.sweep(now);
    return now;
  }

  /** The key's current period with its lapsed reservations dropped, or undefined once it has expired. */
  private livePeriod(key: string, now: number): Period | undefined {
    const period = this.periods.get(key);
    if (!period) return undefined;
    if (period.expiresAt <= now) {
      this.periods.delete(key);
      return undefined;
    }
    for (const [id, hold] of period.holds) if (hold.expiresAt <= now) dropHold(period, id);
    return period;
  }

  private openPeriod(key: string, now: number, periodTtl: number): Period {
    const live = this.livePeriod(key, now);
    if (live) return live;
    const period: Period = { expiresAt: now + periodTtl, settled: 0, held: 0, holds: new Map(), settledIds: new Set() };
    this.periods.set(key, period);
    return period;
  }

  private liveLeases(key: string, now: number): Map<string, number> {
    const holders = this.leases.get(key) ?? new Map<string, number>();
    this.leases.set(key, holders);
    for (const [id, expiresAt] of holders) if (expiresAt <= now) holders.delete(id);
    return holders;
  }

  private sweep(now: number): void {
    this.nextSweep = now + SWEEP_EVERY_MS;
    for (const [key, tatUs] of this.tats) if (tatUs <= now * 1000) this.tats.delete(key);
    for (const key of this.periods.keys()) this.livePeriod(key, now);
    for (const key of this.leases.keys()) if (this.liveLeases(key, now).size === 0) this.leases.delete(key);
  }
}

function consumption(period: Period | undefined): number {
  return period ? period.settled + period.held : 0;
}

function dropHold(period: Period, id: string): void {
  const hold = period.holds.get(id);
  if (!hold) return;
  period.holds.delete(id);
  period.held -= hold.amount;
}
