import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import {
  LimitArgumentError,
  MemoryLimitStore,
  openLimitStore,
  RedisLimitStore,
  type LimitFailureMode,
  type LimitStore,
} from '@jarvis/platform/limits';
import { REDIS_LUA_CLOCK } from '@jarvis/platform/redis';
import { deleteRedisKeys, freePort, redisVariants, uniqueRedisPrefix } from '@jarvis/platform/testing';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const longLived = { periodTtlMs: HOUR, reservationTtlMs: HOUR };
const fresh = (name: string) => `${name}:${randomUUID()}`;
const count = <T>(items: T[], predicate: (item: T) => boolean) => items.filter(predicate).length;

/** Makes `ms` pass for the stores under test, at once: tests of expiry wait for no real time. */
interface TestClock {
  advance(key: string, ms: number): Promise<void>;
  close(): Promise<void>;
}

/** The memory store's own clock, which the test moves. */
function manualClock() {
  let now = Date.now();
  return { now: () => now, advance: async (_key: string, ms: number) => void (now += ms), close: async () => {} };
}

/**
 * Redis keeps time by its own clock, which no test can set: instead every time a key of the store holds (a rate's
 * TAT in µs, reservations' and leases' lapse times in ms) and every key's TTL are moved `ms` into the past,
 * which is what that much time passing does to them. Keys past their TTL go, as Redis would expire them.
 */
const SHIFT_BACK = `${REDIS_LUA_CLOCK}
local ms = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  local kind = redis.call('TYPE', key).ok
  if kind == 'string' then
    redis.call('SET', key, int(tonumber(redis.call('GET', key)) - ms * 1000), 'KEEPTTL')
  elseif kind == 'zset' then
    local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    for i = 1, #members, 2 do redis.call('ZADD', key, int(tonumber(members[i + 1]) - ms), members[i]) end
  end
  if ttl > ms then redis.call('PEXPIRE', key, int(ttl - ms)) elseif ttl >= 0 then redis.call('DEL', key) end
end
return 1`;

/** The keys RedisLimitStore keeps for `key` (see its `key`): each kind, the key as a hash tag. */
const redisKeysOf = (prefix: string, key: string) => ['rate', 'budget', 'holds', 'lease'].map((kind) => `${prefix}${kind}:{${key}}`);

function redisClock(url: string, prefix: string): TestClock {
  const redis = new Redis(url);
  return {
    advance: async (key, ms) => void (await redis.eval(SHIFT_BACK, 4, ...redisKeysOf(prefix, key), ms)),
    close: async () => void (await redis.quit()),
  };
}

for (const variant of redisVariants()) {
  describe(`limits port on ${variant.name}`, { skip: variant.skip }, () => {
    const prefix = uniqueRedisPrefix();
    const memoryClock = manualClock();
    const clock: TestClock = variant.url ? redisClock(variant.url, prefix) : memoryClock;
    const opened: LimitStore[] = [];
    const open = (): LimitStore => {
      const store = variant.url ? new RedisLimitStore({ url: variant.url, prefix }) : new MemoryLimitStore(memoryClock.now);
      opened.push(store);
      return store;
    };
    let store: LimitStore;
    /** A second gateway replica: its own connection to the same Redis; in memory, the one process's store. */
    let replica: LimitStore;

    before(() => {
      store = open();
      replica = variant.url ? open() : store;
    });
    after(async () => {
      await Promise.all([...opened.map((s) => s.close()), clock.close()]);
      if (variant.url) await deleteRedisKeys(variant.url, prefix);
    });

    describe('rate limits (GCRA)', () => {
      test('a burst is admitted, then refused until one emission interval has passed', async () => {
        const key = fresh('burst');
        // Five a 10 s window: an emission interval of 2 s, wide enough that a busy machine's six hits fit in it.
        const limit = { limit: 5, windowMs: 10_000 };
        const decisions = [];
        for (let i = 0; i < 6; i++) decisions.push(await store.hit(key, limit));
        assert.deepEqual(decisions.map((d) => d.allowed), [true, true, true, true, true, false]);
        assert.deepEqual(decisions.map((d) => d.remaining), [4, 3, 2, 1, 0, 0]);
        const refused = decisions[5]!;
        assert.ok(refused.retryAfterMs > 1_500 && refused.retryAfterMs <= 2_000, `retryAfterMs ${refused.retryAfterMs}`);
        assert.ok(refused.resetMs > 9_000 && refused.resetMs <= 10_000, `resetMs ${refused.resetMs}`);
      });

      test('a burst below the limit caps what is admitted at once', async () => {
        const key = fresh('small-burst');
        const limit = { limit: 10, windowMs: HOUR, burst: 3 };
        const decisions = [];
        for (let i = 0; i < 4; i++) decisions.push(await store.hit(key, limit));
        assert.deepEqual(decisions.map((d) => d.allowed), [true, true, true, false]);
        assert.ok(decisions[3]!.retryAfterMs > 0.09 * HOUR && decisions[3]!.retryAfterMs <= 0.1 * HOUR);
      });

      test('it replenishes over time', async () => {
        const key = fresh('replenish');
        // One hit every 6 s; Redis's clock runs on meanwhile, so its margins are seconds wide.
        const limit = { limit: 10, windowMs: MINUTE };
        for (let i = 0; i < 10; i++) assert.equal((await store.hit(key, limit)).allowed, true);
        const refused = await store.hit(key, limit);
        assert.equal(refused.allowed, false);
        await clock.advance(key, refused.retryAfterMs - 3_000);
        assert.equal((await replica.hit(key, limit)).allowed, false, 'not before the interval has passed');
        await clock.advance(key, 3_002);
        const one = await replica.hit(key, limit);
        assert.equal(one.allowed, true);
        assert.equal((await store.hit(key, limit)).allowed, false);
        await clock.advance(key, one.resetMs + 2);
        const full = await store.hit(key, limit);
        assert.deepEqual([full.allowed, full.remaining, full.retryAfterMs], [true, 9, 0]);
        assert.ok(full.resetMs > 5_000 && full.resetMs <= 6_000, `resetMs ${full.resetMs}`);
      });

      test('a hit may cost more than one; a cost above the burst is never admitted', async () => {
        const key = fresh('cost');
        const limit = { limit: 10, windowMs: HOUR };
        assert.equal((await store.hit(key, limit, 4)).remaining, 6);
        const tooDear = await store.hit(key, limit, 7);
        assert.deepEqual([tooDear.allowed, tooDear.remaining], [false, 6]);
        assert.ok(tooDear.retryAfterMs > 0.09 * HOUR && tooDear.retryAfterMs <= 0.1 * HOUR, `retryAfterMs ${tooDear.retryAfterMs}`);
        assert.deepEqual([(await store.hit(key, limit, 6)).remaining], [0]);
        const never = await store.hit(fresh('cost'), limit, 11);
        assert.deepEqual([never.allowed, never.retryAfterMs], [false, -1]);
      });

      test('different keys are independent', async () => {
        const [a, b] = [fresh('a'), fresh('b')];
        const limit = { limit: 2, windowMs: HOUR };
        await store.hit(a, limit);
        await store.hit(a, limit);
        assert.equal((await store.hit(a, limit)).allowed, false);
        assert.deepEqual([(await store.hit(b, limit)).allowed, (await store.hit(b, limit)).remaining], [true, 0]);
      });

      test('1,000 concurrent hits from two replicas against a limit of 100 admit exactly 100', async () => {
        const key = fresh('race');
        const limit = { limit: 100, windowMs: HOUR };
        const decisions = await Promise.all(Array.from({ length: 1_000 }, (_, i) => (i % 2 ? replica : store).hit(key, limit)));
        assert.equal(count(decisions, (d) => d.allowed), 100);
      });

      test('nonsense limits are refused as arguments', async () => {
        await assert.rejects(store.hit('k', { limit: 0, windowMs: 1_000 }), LimitArgumentError);
        await assert.rejects(store.hit('k', { limit: 1, windowMs: -5 }), LimitArgumentError);
        await assert.rejects(store.hit('k', { limit: 1, windowMs: 1_000 }, -1), LimitArgumentError);
      });
    });

    describe('token budgets', () => {
      test('200 concurrent reservations of 10 against 1,000 grant exactly 100', async () => {
        const key = fresh('budget');
        const reservations = await Promise.all(
          Array.from({ length: 200 }, (_, i) => (i % 2 ? replica : store).reserve(key, 10, 1_000, longLived)),
        );
        const granted = reservations.filter((r) => r.granted);
        assert.equal(granted.length, 100);
        assert.deepEqual(granted.map((r) => r.remaining).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i * 10));
        assert.ok(reservations.filter((r) => !r.granted).every((r) => r.remaining === 0));
        assert.equal(await store.consumed(key), 1_000);
      });

      test('settling for less frees the difference; releasing frees it all', async () => {
        const key = fresh('settle');
        const first = await store.reserve(key, 100, 150, longLived);
        assert.deepEqual([first.granted, first.remaining], [true, 50]);
        const second = await store.reserve(key, 100, 150, longLived);
        assert.deepEqual([second.granted, second.remaining], [false, 50]);
        await store.settle(key, first.id, 40);
        assert.equal(await store.consumed(key), 40);
        const third = await replica.reserve(key, 100, 150, longLived);
        assert.deepEqual([third.granted, third.remaining], [true, 10]);
        await replica.release(key, third.id);
        assert.equal(await store.consumed(key), 40);
      });

      test('what really happened is counted, beyond the estimate and the budget', async () => {
        const key = fresh('overrun');
        const reservation = await store.reserve(key, 10, 100, longLived);
        await store.settle(key, reservation.id, 250);
        assert.equal(await store.consumed(key), 250);
        assert.deepEqual(await store.reserve(key, 1, 100, longLived).then((r) => [r.granted, r.remaining]), [false, 0]);
      });

      test('settling is idempotent per reservation', async () => {
        const key = fresh('idempotent');
        const reservation = await store.reserve(key, 30, 100, longLived);
        await Promise.all([store.settle(key, reservation.id, 20), replica.settle(key, reservation.id, 20)]);
        await store.settle(key, reservation.id, 20);
        assert.equal(await store.consumed(key), 20);
      });

      test('a reservation neither settled nor released lapses on its own, and settling it later still counts', async () => {
        const key = fresh('lapse');
        const crashed = await store.reserve(key, 60, 100, { periodTtlMs: HOUR, reservationTtlMs: MINUTE });
        assert.equal(await store.consumed(key), 60);
        assert.equal((await replica.reserve(key, 60, 100, longLived)).granted, false);
        await clock.advance(key, MINUTE / 2);
        assert.equal(await store.consumed(key), 60, 'held until it lapses');
        await clock.advance(key, MINUTE / 2);
        assert.equal(await store.consumed(key), 0);
        assert.equal((await replica.reserve(key, 60, 100, longLived)).granted, true);
        await store.settle(key, crashed.id, 25);
        assert.equal(await store.consumed(key), 85);
      });

      test('a period ends when its key expires, and a settle after it opens the next one', async () => {
        const key = fresh('period');
        const ttls = { periodTtlMs: MINUTE, reservationTtlMs: HOUR };
        const late = await store.reserve(key, 10, 100, ttls);
        const early = await store.reserve(key, 10, 100, ttls);
        await store.settle(key, early.id, 10);
        assert.equal(await store.consumed(key), 20);
        await clock.advance(key, MINUTE / 2);
        assert.equal(await store.consumed(key), 20, 'the period lasts its ttl');
        await clock.advance(key, MINUTE / 2);
        assert.equal(await store.consumed(key), 0);
        await store.settle(key, late.id, 7);
        assert.equal(await store.consumed(key), 7);
        await clock.advance(key, MINUTE);
        assert.equal(await store.consumed(key), 0);
      });

      test('amounts are whole numbers', async () => {
        await assert.rejects(store.reserve('k', 1.5, 10, longLived), LimitArgumentError);
        await assert.rejects(store.settle('k', 'not-from-reserve', 1), LimitArgumentError);
      });
    });

    describe('concurrency leases', () => {
      test('concurrent acquires from two replicas get exactly max slots; releasing frees one', async () => {
        const key = fresh('slots');
        const leases = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? replica : store).acquire(key, 5, HOUR)));
        const held = leases.filter((lease) => lease !== null);
        assert.equal(held.length, 5);
        assert.equal(await store.acquire(key, 5, HOUR), null);
        await replica.releaseLease(key, held[0]!.id);
        assert.ok(await store.acquire(key, 5, HOUR));
        assert.equal(await replica.acquire(key, 5, HOUR), null);
      });

      test('a lease not renewed frees its slot when its ttl passes (a crashed holder)', async () => {
        const key = fresh('crash');
        assert.ok(await store.acquire(key, 1, MINUTE));
        assert.equal(await replica.acquire(key, 1, MINUTE), null);
        await clock.advance(key, MINUTE / 2);
        assert.equal(await replica.acquire(key, 1, MINUTE), null, 'held until its ttl passes');
        await clock.advance(key, MINUTE / 2);
        assert.ok(await replica.acquire(key, 1, HOUR));
      });

      test('renewing keeps a lease past its first ttl; a lapsed lease cannot be renewed', async () => {
        const key = fresh('renew');
        const lease = (await store.acquire(key, 1, MINUTE))!;
        await clock.advance(key, MINUTE / 2);
        assert.equal(await store.renew(key, lease.id, 2 * MINUTE), true);
        await clock.advance(key, MINUTE);
        assert.equal(await replica.acquire(key, 1, MINUTE), null, 'renewed past its first ttl');
        await clock.advance(key, 1.5 * MINUTE);
        assert.equal(await store.renew(key, lease.id, MINUTE), false);
        assert.ok(await replica.acquire(key, 1, MINUTE));
      });
    });

    if (variant.url) test('every key the store writes expires', async () => {
      const redis = new Redis(variant.url!);
      try {
        const keys = await redis.keys(`${prefix}*`);
        assert.ok(keys.length > 10);
        const ttls = await Promise.all(keys.map((key) => redis.pttl(key)));
        // -1: no expiry. -2: expired since KEYS listed it, which is expiring as it should.
        assert.deepEqual(keys.filter((_, i) => ttls[i] === -1), []);
      } finally {
        await redis.quit();
      }
    });

    if (variant.url) test('stores opened from configuration share the limits', async () => {
      const [a, b] = [0, 1].map(() => openLimitStore({ redisUrl: variant.url, failureMode: 'closed', prefix }));
      const key = fresh('configured');
      const limit = { limit: 1, windowMs: HOUR };
      try {
        assert.equal((await a!.hit(key, limit)).allowed, true);
        const refused = await b!.hit(key, limit);
        assert.equal(refused.allowed, false);
        assert.ok(refused.retryAfterMs > HOUR - 1_000, 'refused by Redis, not by the failure mode');
      } finally {
        await Promise.all([a!.close(), b!.close()]);
      }
    });
  });
}

test('on its own clock, the memory store answers to the microsecond', async () => {
  let now = 1_000;
  const store = new MemoryLimitStore(() => now);
  const limit = { limit: 3, windowMs: 300 };
  for (let i = 0; i < 3; i++) assert.equal((await store.hit('k', limit)).allowed, true);
  assert.deepEqual(await store.hit('k', limit), { allowed: false, remaining: 0, retryAfterMs: 100, resetMs: 300 });
  now += 99.999;
  assert.equal((await store.hit('k', limit)).allowed, false);
  now += 0.001;
  assert.deepEqual(await store.hit('k', limit), { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 300 });
  await store.close();
});

describe('limits when Redis cannot be reached', () => {
  const quiet = { warn: () => {} };
  const unreachable = async (failureMode: LimitFailureMode, log = quiet) =>
    openLimitStore({ redisUrl: `redis://127.0.0.1:${await freePort()}`, failureMode, log });

  /** Runs `check` against a store that cannot reach Redis, and asserts the answers came quickly. */
  async function whileUnreachable(failureMode: LimitFailureMode, check: (store: LimitStore) => Promise<void>) {
    const store = await unreachable(failureMode);
    const started = performance.now();
    try {
      await check(store);
      assert.ok(performance.now() - started < 2_000, 'answered without waiting for Redis');
    } finally {
      await store.close();
    }
  }

  test('failing open admits everything', () =>
    whileUnreachable('open', async (store) => {
      assert.deepEqual(await store.hit('k', { limit: 1, windowMs: HOUR }), { allowed: true, remaining: -1, retryAfterMs: 0, resetMs: 0 });
      const reservation = await store.reserve('k', 10, 5, longLived);
      assert.deepEqual([reservation.granted, reservation.remaining], [true, -1]);
      await store.settle('k', reservation.id, 10);
      await store.release('k', reservation.id);
      const lease = await store.acquire('k', 1, HOUR);
      assert.ok(lease);
      assert.equal(await store.renew('k', lease.id, HOUR), true);
      await store.releaseLease('k', lease.id);
      await assert.rejects(store.consumed('k'));
    }));

  test('failing closed refuses, and does not cut short work already admitted', () =>
    whileUnreachable('closed', async (store) => {
      assert.deepEqual(await store.hit('k', { limit: 1, windowMs: HOUR }), {
        allowed: false,
        remaining: 0,
        retryAfterMs: 1_000,
        resetMs: 1_000,
      });
      const reservation = await store.reserve('k', 10, 50, longLived);
      assert.deepEqual([reservation.granted, reservation.remaining], [false, 0]);
      await store.settle('k', reservation.id, 10);
      assert.equal(await store.acquire('k', 1, HOUR), null);
      assert.equal(await store.renew('k', 'held-before-the-outage', HOUR), true);
    }));

  test('a mistaken argument is still an error, whatever the mode', () =>
    whileUnreachable('open', async (store) => {
      await assert.rejects(store.hit('k', { limit: 0, windowMs: HOUR }), LimitArgumentError);
      await assert.rejects(store.acquire('k', 0, HOUR), LimitArgumentError);
    }));

  test('the outage is logged now and then, not once per call', async () => {
    const warnings: unknown[] = [];
    const store = await unreachable('closed', { warn: (...args: unknown[]) => void warnings.push(args) });
    try {
      await Promise.all(Array.from({ length: 20 }, () => store.hit('k', { limit: 1, windowMs: HOUR })));
      assert.equal(warnings.length, 1);
    } finally {
      await store.close();
    }
  });

  test('without a Redis URL, limits live in the process', async () => {
    const store = openLimitStore({ failureMode: 'closed' });
    assert.ok(store instanceof MemoryLimitStore);
    await store.close();
  });
});
