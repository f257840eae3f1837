import { REDIS_LUA_CLOCK } from '../redis.ts';

/** A Lua script, registered with ioredis (`defineCommand`), which runs it by its SHA and loads it when needed. */
export interface LuaScript {
  name: string;
  lua: string;
}

/** Every script keeps time by the server's clock (`now_us`, `now_ms`, `ceil_ms`, `int`: see REDIS_LUA_CLOCK). */
function script(name: string, body: string): LuaScript {
  return { name, lua: `${REDIS_LUA_CLOCK}\n${body}` };
}

/** KEYS: tat. ARGV: interval, tolerance, increment (µs). Returns {allowed, remaining, retryAfterMs, resetMs}; see gcra.ts. */
export const HIT = script('jarvisLimitsHit', `
local interval, tolerance, increment = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_us()
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local function remaining(t) return math.max(0, math.floor((tolerance - (t - now)) / interval)) end
if increment > tolerance then return {0, remaining(tat), -1, ceil_ms(tat - now)} end
local next_tat = tat + increment
local allow_at = next_tat - tolerance
if allow_at > now then return {0, remaining(tat), ceil_ms(allow_at - now), ceil_ms(tat - now)} end
redis.call('SET', KEYS[1], int(next_tat), 'PX', math.max(1, ceil_ms(next_tat - now)))
return {1, remaining(next_tat), 0, ceil_ms(next_tat - now)}
`);

/**
 * KEYS: the period's hash (settled, held, hold:<id> = amount, done:<id>) and its zset of reservation ids scored
 * by when they lapse. Both expire with the period; lapsed reservations are pruned before anything is read.
 */
const BUDGET = `
local period, holds = KEYS[1], KEYS[2]
local function drop_hold(id)
  local amount = tonumber(redis.call('HGET', period, 'hold:' .. id))
  redis.call('ZREM', holds, id)
  if not amount then return end
  redis.call('HDEL', period, 'hold:' .. id)
  redis.call('HINCRBY', period, 'held', int(-amount))
end
local function prune(now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', holds, '-inf', int(now))) do drop_hold(id) end
end
local function consumed()
  local counts = redis.call('HMGET', period, 'settled', 'held')
  return (tonumber(counts[1]) or 0) + (tonumber(counts[2]) or 0)
end
local function keep_for_period(ttl)
  if redis.call('PTTL', period) < 0 then redis.call('PEXPIRE', period, ttl) end
  if redis.call('EXISTS', holds) == 1 then redis.call('PEXPIRE', holds, redis.call('PTTL', period)) end
end
`;

/** ARGV: id, amount, budget, periodTtlMs, reservationTtlMs. Returns {granted, remaining}. */
export const RESERVE = script('jarvisLimitsReserve', `${BUDGET}
local id, amount, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
prune(now)
local used = consumed()
if used + amount > budget then return {0, math.max(0, budget - used)} end
redis.call('HSET', period, 'hold:' .. id, ARGV[2])
redis.call('HINCRBY', period, 'held', ARGV[2])
redis.call('ZADD', holds, int(now + tonumber(ARGV[5])), id)
keep_for_period(ARGV[4])
return {1, budget - used - amount}
`);

/** ARGV: id, actual, periodTtlMs. */
export const SETTLE = script('jarvisLimitsSettle', `${BUDGET}
local id = ARGV[1]
prune(now_ms())
if redis.call('HEXISTS', period, 'done:' .. id) == 1 then return 0 end
drop_hold(id)
redis.call('HINCRBY', period, 'settled', ARGV[2])
redis.call('HSET', period, 'done:' .. id, 1)
keep_for_period(ARGV[3])
return 1
`);

/** ARGV: id. */
export const RELEASE = script('jarvisLimitsRelease', `${BUDGET}
prune(now_ms())
drop_hold(ARGV[1])
return 1
`);

export const CONSUMED = script('jarvisLimitsConsumed', `${BUDGET}
prune(now_ms())
return consumed()
`);

/** KEYS: the zset of lease ids scored by expiry, kept as long as its longest lease. */
const LEASES = `
local leases = KEYS[1]
local function prune(now) redis.call('ZREMRANGEBYSCORE', leases, '-inf', int(now)) end
local function hold(id, now, ttl)
  redis.call('ZADD', leases, int(now + ttl), id)
  if redis.call('PTTL', leases) < ttl then redis.call('PEXPIRE', leases, ttl) end
end
`;

/** ARGV: id, max, ttlMs. Returns 1 when the lease was taken. */
export const ACQUIRE = script('jarvisLimitsAcquire', `${LEASES}
local now = now_ms()
prune(now)
if redis.call('ZCARD', leases) >= tonumber(ARGV[2]) then return 0 end
hold(ARGV[1], now, tonumber(ARGV[3]))
return 1
`);

/** ARGV: id, ttlMs. Returns 1 when the lease was still held. */
export const RENEW = script('jarvisLimitsRenew', `${LEASES}
local now = now_ms()
prune(now)
if not redis.call('ZSCORE', leases, ARGV[1]) then return 0 end
hold(ARGV[1], now, tonumber(ARGV[2]))
return 1
`);
