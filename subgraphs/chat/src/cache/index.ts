/**
 * The inference cache: an answer already given is given again, to the same tenant only, for the same model and
 * parameters, either for the same prompt (EXACT, after normalising case, whitespace and Unicode forms) or for a
 * question close enough to one answered in the same context (SEMANTIC: cosine of the platform embedder's
 * vectors at or above the threshold; see keys.ts for what "same context" means). Answers live for the TTL
 * from when they were stored; a hit does not extend it. On Redis when a URL is given, in this process otherwise.
 */
import { createLogger, occasionalWarning, type Logger } from '@jarvis/platform/logger';
import { LocalHashEmbedder, type Embedder } from '@jarvis/platform/text';
import { checkTenant, prepareKey, type CacheAdapter } from './keys.ts';
import { MemoryInferenceCache, type CacheSettings } from './memory.ts';
import { RedisInferenceCache } from './redis.ts';
import type { CacheHit, CacheKey, CachedAnswer, InferenceCache } from './types.ts';

export type * from './types.ts';
export { normalizeText, stableJson } from './keys.ts';

export const DEFAULT_SEMANTIC_THRESHOLD = 0.92;
export const DEFAULT_MAX_SEMANTIC_ENTRIES = 500;

export interface InferenceCacheOptions {
  /** Unset: the cache lives in this process (the embedded default), right for one replica only. */
  redisUrl?: string;
  /** Namespaces every Redis key. */
  prefix: string;
  /** How long an answer is served from the cache after it was stored; fractions of a second are kept. */
  ttlSeconds: number;
  /** Lowest cosine similarity of two questions for a SEMANTIC hit, in (0, 1]; 0.92 unless given. */
  semanticThreshold?: number;
  /** Embeds questions; the platform's local hashed embedder unless given. */
  embedder?: Embedder;
  /** Questions kept per tenant and bucket for semantic lookups, the newest; 500 unless given. */
  maxSemanticEntries?: number;
  /** Where the default onError warns, now and then; a logger of its own at warn level unless given. */
  log?: Pick<Logger, 'warn'>;
  /** Hears about a failing cache (Redis away): lookups miss and stores are skipped meanwhile. Logged to `log` unless given. */
  onError?: (error: unknown) => void;
}

export function openInferenceCache({
  redisUrl,
  prefix,
  ttlSeconds,
  semanticThreshold = DEFAULT_SEMANTIC_THRESHOLD,
  embedder = new LocalHashEmbedder(),
  maxSemanticEntries = DEFAULT_MAX_SEMANTIC_ENTRIES,
  log = createLogger('inference-cache', 'warn'),
  onError = occasionalWarning(log, 'inference cache unavailable; answering without it until it is back'),
}: InferenceCacheOptions): InferenceCache {
  if (!(Number.isFinite(ttlSeconds) && ttlSeconds > 0)) throw new RangeError(`ttlSeconds must be a positive number, got ${ttlSeconds}`);
  if (!(semanticThreshold > 0 && semanticThreshold <= 1)) throw new RangeError(`semanticThreshold must be in (0, 1], got ${semanticThreshold}`);
  if (!(Number.isInteger(maxSemanticEntries) && maxSemanticEntries >= 1)) {
    throw new RangeError(`maxSemanticEntries must be a positive integer, got ${maxSemanticEntries}`);
  }
  const settings: CacheSettings = { ttlMs: Math.max(1, Math.round(ttlSeconds * 1000)), semanticThreshold, maxSemanticEntries };
  const adapter = redisUrl ? new RedisInferenceCache(redisUrl, prefix, settings, onError) : new MemoryInferenceCache(settings);
  return inFront(adapter, embedder, onError);
}

/**
 * The front layer, the same for every adapter: it checks the tenant and prepares the key (hashes, and the
 * question's embedding when an adapter first asks for it) once. A cache is an optimisation: while it cannot be
 * reached (or the embedder fails), a lookup is a miss and a store is skipped, and the answer is produced as if
 * there were no cache. A key without a tenant is a caller's bug and still throws.
 */
function inFront(adapter: CacheAdapter, embedder: Embedder, onError: (error: unknown) => void): InferenceCache {
  return {
    async lookup(key: CacheKey): Promise<CacheHit | undefined> {
      checkTenant(key);
      try {
        return await adapter.lookup(prepareKey(key, embedder));
      } catch (error) {
        onError(error);
        return undefined;
      }
    },
    async store(key: CacheKey, answer: CachedAnswer): Promise<void> {
      checkTenant(key);
      try {
        await adapter.store(prepareKey(key, embedder), answer);
      } catch (error) {
        onError(error);
      }
    },
    close: () => adapter.close(),
  };
}

