import { randomUUID } from 'node:crypto';
import { SpanKind, traced } from '../telemetry.ts';
import { failFastRedis, type FailFastRedis } from '../redis.ts';
import { duration, newReservationId, periodTtlOf, wholeNumber } from './arguments.ts';
import { gcraSteps } from './gcra.ts';
import { ACQUIRE, CONSUMED, HIT, RELEASE, RENEW, RESERVE, SETTLE, type LuaScript } from './scripts.ts';
import type { Lease, LimitStore, RateDecision, RateLimit, Reservation, ReserveOptions } from './types.ts';

interface RedisLimitStoreOptions {
  url: string;
  /** Namespaces every key, so tests can use their own and delete them afterwards. */
  prefix?: string;
  /** Hears about connection errors (ioredis reports each failed reconnection). */
  onConnectionError?: (error: Error) => void;
}

/** A limit check sits on every request's path: a dead or hung Redis must answer in about a second, not hold it up. */
const COMMAND_TIMEOUT_MS = 500;

/** The limits port on Redis: each operation is one Lua script, atomic across every replica sharing the server. */
export class RedisLimitStore implements LimitStore {
  private readonly client: FailFastRedis;
  private readonly prefix: string;

  constructor({ url, prefix = 'jarvis:limits:', onConnectionError = () => {} }: RedisLimitStoreOptions) {
    this.prefix = prefix;
    this.client = failFastRedis(url, { commandTimeoutMs: COMMAND_TIMEOUT_MS, onConnectionError });
    for (const { name, lua } of [HIT, RESERVE, SETTLE, RELEASE, CONSUMED, ACQUIRE, RENEW]) this.client.redis.defineCommand(name, { lua });
  }

  async hit(key: string, limit: RateLimit, cost = 1): Promise<RateDecision> {
    const { intervalUs, toleranceUs, incrementUs } = gcraSteps(limit, cost);
    const [allowed, remaining, retryAfterMs, resetMs] = await this.numbers(HIT, [this.key('rate', key)], [intervalUs, toleranceUs, incrementUs]);
    return { allowed: allowed === 1, remaining: remaining!, retryAfterMs: retryAfterMs!, resetMs: resetMs! };
  }

  async reserve(key: string, amount: number, budget: number, options: ReserveOptions): Promise<Reservation> {
    wholeNumber('amount', amount);
    wholeNumber('budget', budget);
    const periodTtl = duration('periodTtlMs', options.periodTtlMs);
    const holdTtl = duration('reservationTtlMs', options.reservationTtlMs);
    const id = newReservationId(periodTtl);
    const [granted, remaining] = await this.numbers(RESERVE, this.budgetKeys(key), [id, amount, budget, periodTtl, holdTtl]);
    return { id, granted: granted === 1, remaining: remaining! };
  }

  async settle(key: string, reservationId: string, actual: number): Promise<void> {
    wholeNumber('actual', actual);
    await this.run(SETTLE, this.budgetKeys(key), [reservationId, actual, periodTtlOf(reservationId)]);
  }

  async release(key: string, reservationId: string): Promise<void> {
    await this.run(RELEASE, this.budgetKeys(key), [reservationId]);
  }

  async consumed(key: string): Promise<number> {
    return Number(await this.run(CONSUMED, this.budgetKeys(key), []));
  }

  async acquire(key: string, max: number, ttlMs: number): Promise<Lease | null> {
    wholeNumber('max', max, 1);
    const id = randomUUID();
    const taken = await this.run(ACQUIRE, [this.key('lease', key)], [id, max, duration('ttlMs', ttlMs)]);
    return taken === 1 ? { id } : null;
  }

  async renew(key: string, leaseId: string, ttlMs: number): Promise<boolean> {
    return (await this.run(RENEW, [this.key('lease', key)], [leaseId, duration('ttlMs', ttlMs)])) === 1;
  }

  /** One ZREM: atomic on its own, and it needs no clock. */
  async releaseLease(key: string, leaseId: string): Promise<void> {
    await this.client.connected;
    await this.client.redis.zrem(this.key('lease', key), leaseId);
  }

  close(): Promise<void> {
    return this.client.close();
  }

  /** Braces make the key a hash tag, so a period's two keys stay on one Redis Cluster slot. */
  private key(kind: 'rate' | 'budget' | 'holds' | 'lease', key: string): string {
    return `${this.prefix}${kind}:{${key}}`;
  }

  private budgetKeys(key: string): string[] {
    return [this.key('budget', key), this.key('holds', key)];
  }

  private async numbers(script: LuaScript, keys: string[], args: (string | number)[]): Promise<number[]> {
    return (await this.run(script, keys, args)) as number[];
  }

  /** Commands defined without a key count take it as their first argument. */
  private async run(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    const { redis, connected } = this.client;
    await connected;
    const command = (redis as unknown as Record<string, (...parts: (string | number)[]) => Promise<unknown>>)[script.name]!;
    return traced(`redis ${script.name}`, { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'redis', 'db.operation.name': 'EVALSHA', 'jarvis.redis.script': script.name }, requireParent: true }, () =>
      command.call(redis, keys.length, ...keys, ...args),
    );
  }
}
