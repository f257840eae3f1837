import { failFastRedis, REDIS_LUA_CLOCK, type FailFastRedis } from '@jarvis/platform/redis';
import { decodeVector, encodeVector, rankMatches, type CacheAdapter, type PreparedKey, type SemanticEntry } from './keys.ts';
import type { CacheSettings } from './memory.ts';
import type { CacheHit, CachedAnswer } from './types.ts';

/**
 * Stock Redis 7, no vector search module. Per tenant:
 *   <prefix>{<tenant>}:answer:<exact>    the answer's JSON, SET with the TTL
 *   <prefix>{<tenant>}:bucket:<bucket>   sorted set: exact keys of a bucket's answers, scored by when they were stored
 *   <prefix>{<tenant>}:vectors:<bucket>  hash: exact key → the question's embedding, base64 of float32s
 * A bucket holds at most maxSemanticEntries questions, the newest; its keys expire a TTL after its last store,
 * and members as old as the TTL are dropped by the scripts. An answer that is gone while its member remains
 * (evicted under maxmemory, deleted) is a miss, and its member is dropped when a lookup meets it. The tenant is
 * the hash tag, so each script's keys share a Redis Cluster slot; it is URI-encoded, so its braces cannot move
 * the tag or run into another tenant's names.
 */

/** Server time (REDIS_LUA_CLOCK), so replicas' clocks do not matter, and the bucket's housekeeping. */
const PRELUDE = `${REDIS_LUA_CLOCK}
local function hdel(key, fields)
  for i = 1, #fields, 1000 do redis.call('HDEL', key, unpack(fields, i, math.min(i + 999, #fields))) end
end
local function prune_stale(bucket, vectors, ttl)
  local cutoff = int(now_ms() - ttl)
  local stale = redis.call('ZRANGEBYSCORE', bucket, '-inf', cutoff)
  if #stale > 0 then
    redis.call('ZREMRANGEBYSCORE', bucket, '-inf', cutoff)
    hdel(vectors, stale)
  end
end
`;

/** KEYS: answer, bucket, vectors. ARGV: answer JSON, ttl ms, exact key, vector ('' for none), max entries. */
const STORE = {
  name: 'jarvisInferenceCacheStore',
  numberOfKeys: 3,
  lua: `${PRELUDE}
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', int(ttl))
if ARGV[4] == '' then return 0 end
prune_stale(KEYS[2], KEYS[3], ttl)
-- Stored later, scored higher, even within one millisecond: trimming must drop the oldest, not a tie's loser.
local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
local score = now_ms()
if newest and tonumber(newest) >= score then score = tonumber(newest) + 1 end
redis.call('ZADD', KEYS[2], int(score), ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  hdel(KEYS[3], oldest)
end
redis.call('PEXPIRE', KEYS[2], int(ttl))
redis.call('PEXPIRE', KEYS[3], int(ttl))
return 1
`,
};

/** KEYS: bucket, vectors. ARGV: ttl ms. Returns the live entries oldest first, flat: exact key, vector, … */
const ENTRIES = {
  name: 'jarvisInferenceCacheEntries',
  numberOfKeys: 2,
  lua: `${PRELUDE}
prune_stale(KEYS[1], KEYS[2], tonumber(ARGV[1]))
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for i = 1, #members, 1000 do
  local vectors = redis.call('HMGET', KEYS[2], unpack(members, i, math.min(i + 999, #members)))
  for j = 1, #vectors do
    out[#out + 1] = members[i + j - 1]
    out[#out + 1] = vectors[j] or ''
  end
end
return out
`,
};

/** KEYS: answer, bucket, vectors. ARGV: exact key. The answer, or nil after dropping the member that pointed at it. */
const ANSWER_OR_PRUNE = {
  name: 'jarvisInferenceCacheAnswerOrPrune',
  numberOfKeys: 3,
  lua: `
local answer = redis.call('GET', KEYS[1])
if answer then return answer end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return false
`,
};

interface CacheCommands {
  jarvisInferenceCacheStore(answer: string, bucket: string, vectors: string, json: string, ttlMs: number, member: string, vector: string, max: number): Promise<number>;
  jarvisInferenceCacheEntries(bucket: string, vectors: string, ttlMs: number): Promise<string[]>;
  jarvisInferenceCacheAnswerOrPrune(answer: string, bucket: string, vectors: string, member: string): Promise<string | null>;
}

/** A cache lookup sits on an answer's path: a dead or hung Redis must be a quick miss, not a wait. */
const COMMAND_TIMEOUT_MS = 1_000;

export class RedisInferenceCache implements CacheAdapter {
  private readonly client: FailFastRedis;
  private readonly commands: CacheCommands;

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly settings: CacheSettings,
    onConnectionError: (error: Error) => void,
  ) {
    this.client = failFastRedis(url, { commandTimeoutMs: COMMAND_TIMEOUT_MS, onConnectionError });
    for (const { name, numberOfKeys, lua } of [STORE, ENTRIES, ANSWER_OR_PRUNE]) this.client.redis.defineCommand(name, { numberOfKeys, lua });
    this.commands = this.client.redis as unknown as CacheCommands;
  }

  async lookup(key: PreparedKey): Promise<CacheHit | undefined> {
    const { tenantId, exact, bucket } = key;
    const names = this.names(tenantId, bucket);
    await this.client.connected;
    const exactHit = await this.client.redis.get(names.answer(exact));
    if (exactHit !== null) return { kind: 'EXACT', answer: JSON.parse(exactHit) as CachedAnswer, similarity: 1 };
    const vector = await key.vector();
    if (!vector) return undefined;
    const flat = await this.commands.jarvisInferenceCacheEntries(names.bucket, names.vectors, this.settings.ttlMs);
    for (const { member, similarity } of rankMatches(vector, entriesOf(flat), this.settings.semanticThreshold)) {
      const answer = await this.commands.jarvisInferenceCacheAnswerOrPrune(names.answer(member), names.bucket, names.vectors, member);
      if (answer !== null) return { kind: 'SEMANTIC', answer: JSON.parse(answer) as CachedAnswer, similarity };
    }
    return undefined;
  }

  async store(key: PreparedKey, answer: CachedAnswer): Promise<void> {
    const { tenantId, exact, bucket } = key;
    const vector = await key.vector();
    const names = this.names(tenantId, bucket);
    await this.client.connected;
    await this.commands.jarvisInferenceCacheStore(
      names.answer(exact),
      names.bucket,
      names.vectors,
      JSON.stringify(answer),
      this.settings.ttlMs,
      exact,
      vector ? encodeVector(vector) : '',
      this.settings.maxSemanticEntries,
    );
  }

  close(): Promise<void> {
    return this.client.close();
  }

  private names(tenantId: string, bucket: string) {
    const tenant = `${this.prefix}{${encodeURIComponent(tenantId)}}`;
    return {
      answer: (exact: string) => `${tenant}:answer:${exact}`,
      bucket: `${tenant}:bucket:${bucket}`,
      vectors: `${tenant}:vectors:${bucket}`,
    };
  }
}

function* entriesOf(flat: string[]): Generator<SemanticEntry> {
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const vector = decodeVector(flat[i + 1]!);
    if (vector) yield { member: flat[i]!, vector };
  }
}
