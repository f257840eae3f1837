/** The inference cache port: answers already given, found again by the exact prompt or by a question that means the same. */

/** An answer as the model gave it, with what it cost; stored as JSON, so `citations` must survive JSON. */
export interface CachedAnswer {
  text: string;
  citations: unknown;
  model: string;
  promptTokens: number;
  completionTokens: number;
  createdAt: string;
}

export interface CacheKey {
  tenantId: string;
  model: string;
  /** Generation parameters (temperature, max tokens, …); key order does not matter. */
  params: Record<string, unknown>;
  /** The full prompt the model would get, fitted: instructions, history, retrieved passages and the question. */
  prompt: string;
  /** The user's question as it appears in `prompt`; what semantic lookups compare. */
  question: string;
}

/** EXACT: the same tenant, model, params and prompt (similarity 1). SEMANTIC: a question close enough, in the same context. */
export type CacheHit = { kind: 'EXACT' | 'SEMANTIC'; answer: CachedAnswer; similarity: number };

export interface InferenceCache {
  /** A hit, or undefined on a miss; a cache that cannot answer (Redis away) misses rather than fails. */
  lookup(key: CacheKey): Promise<CacheHit | undefined>;
  store(key: CacheKey, answer: CachedAnswer): Promise<void>;
  close(): Promise<void>;
}
