import { Redis } from 'ioredis';

export interface FailFastRedis {
  redis: Redis;
  /** Settles (never rejects) once the one connection attempt has succeeded or failed: await it before a command. */
  connected: Promise<unknown>;
  /** After the connection attempt: QUIT when connected, else (or if QUIT fails) disconnect. */
  close(): Promise<void>;
}

/**
 * A Redis client for work that sits on a request's path (limits, the inference cache): while Redis is away a
 * command fails at once instead of waiting in a queue, and one cut off with its connection fails rather than
 * being sent again after its caller gave up on it; a dead or hung Redis answers within `commandTimeoutMs`.
 * Made with lazyConnect and connected once, here: `connected` settles when that first attempt has succeeded or
 * failed; calls await it, so only the first ones wait, and afterwards they fail fast while Redis is away.
 */
export function failFastRedis(url: string, { commandTimeoutMs, onConnectionError }: { commandTimeoutMs: number; onConnectionError: (error: Error) => void }): FailFastRedis {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 1_000,
    commandTimeout: commandTimeoutMs,
  });
  redis.on('error', onConnectionError);
  const connected = redis.connect().catch(() => undefined);
  return {
    redis,
    connected,
    async close() {
      await connected;
      if (redis.status !== 'ready') return redis.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * Lua functions for scripts that keep time by the server's clock, so replicas' clocks do not matter: `now_us()`,
 * `now_ms()`, `ceil_ms(us)`, and `int(x)`. Numbers go to redis.call formatted as integers by `int`: Lua would
 * write a microsecond timestamp in exponent notation, which loses digits and which PEXPIRE refuses.
 */
export const REDIS_LUA_CLOCK = `
local function int(x) return string.format('%.0f', x) end
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function now_ms() return math.floor(now_us() / 1000) end
local function ceil_ms(us) return math.ceil(us / 1000) end
`;
