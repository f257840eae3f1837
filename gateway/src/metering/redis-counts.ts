import { randomUUID } from 'node:crypto';
import { failFastRedis } from '@jarvis/platform/redis';
import { fieldOf, meteredOf, type RequestCounts } from './counts.ts';

/** Sealing renames the open counts, so counts added meanwhile start the next batch: none is lost or sent twice. */
const SEAL = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1`;

/** A claim is this replica's to renew; another's lapses after ARGV[2] ms (a replica that died while sending). */
const CLAIM = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

const ACKNOWLEDGE = `
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
return 1`;

const CLAIM_MS = 30_000;
/** Counting sits on every request's path: an unreachable Redis must answer soon, and counts then stay in memory. */
const COMMAND_TIMEOUT_MS = 500;

/**
 * Request counts on Redis, shared by every gateway replica: a count is in Redis before its request is
 * answered, so a gateway killed at any moment has lost none. The braces keep every key on one Redis Cluster slot.
 */
export function redisRequestCounts(url: string, prefix: string, onConnectionError: (error: Error) => void): RequestCounts {
  const client = failFastRedis(url, { commandTimeoutMs: COMMAND_TIMEOUT_MS, onConnectionError });
  const { redis } = client;
  const instance = randomUUID();
  const key = (...parts: string[]) => [`${prefix}{meter}`, ...parts].join(':');
  const script = async (lua: string, keys: string[], args: (string | number)[]) => {
    await client.connected;
    return redis.eval(lua, keys.length, ...keys, ...args);
  };
  return {
    async add(metered) {
      await client.connected;
      await redis.hincrby(key('open'), fieldOf(metered), 1);
    },
    async seal() {
      const id = randomUUID();
      await script(SEAL, [key('open'), key('batch', id), key('pending')], [id]);
    },
    async claimPending() {
      await client.connected;
      const batches = [];
      for (const id of await redis.smembers(key('pending'))) {
        if ((await script(CLAIM, [key('claim', id)], [instance, CLAIM_MS])) !== 1) continue;
        const counts = Object.entries(await redis.hgetall(key('batch', id))).map(([field, quantity]) => ({ metered: meteredOf(field), quantity: Number(quantity) }));
        batches.push({ id, counts });
      }
      return batches;
    },
    async acknowledge(batchId, metered) {
      await script(ACKNOWLEDGE, [key('batch', batchId), key('pending'), key('claim', batchId)], [fieldOf(metered), batchId]);
    },
    close: () => client.close(),
  };
}
