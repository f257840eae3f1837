/**
 * What the cache is keyed by, the same for every adapter: normalised text, stable JSON of the parameters, the
 * exact key, the semantic bucket, the prepared key adapters are handed, and the cosine ranking of a bucket's questions.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { normalize, tokenize, type Embedder } from '@jarvis/platform/text';
import type { CacheHit, CacheKey, CachedAnswer } from './types.ts';

/** Unicode NFKC, whitespace runs collapsed to one space, trimmed, lower-cased. */
export function normalizeText(text: string): string {
  return text.normalize('NFKC').replace(/\s+/gu, ' ').trim().toLowerCase();
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON !== 'function') {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(record).sort().map((name) => [name, sorted(record[name])]));
  }
  return value;
}

/** JSON with every object's keys sorted, so `{a, b}` and `{b, a}` give the same text. */
export function stableJson(value: unknown): string {
  return JSON.stringify(sorted(value)) ?? 'null';
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Semantic hits are taken only within the same retrieved context, never across it: a question answered from
 * other passages (or after another conversation history) may deserve another answer, and a cached answer's
 * citations point at the passages it was given. The context is the normalised prompt with the question's
 * last occurrence (where templates put the current question) cut out: instructions, history and passages.
 * A prompt that does not contain the question verbatim is its own context, so it gets exact hits only.
 */
function contextOf(prompt: string, question: string): string {
  const at = prompt.lastIndexOf(question);
  return at < 0 ? prompt : `${prompt.slice(0, at)}\u0000${prompt.slice(at + question.length)}`;
}

/** Negations and numbers: the words the hashed embedder cannot weigh (it drops "not" as a stopword). */
const NEGATIONS: ReadonlySet<string> = new Set(['no', 'not', 'nor', 'never', 'neither', 'none', 'nobody', 'nothing', 'nowhere', 'without', 'cannot']);
const CONTRACTED_NOT = /n['’]t$/u;
const DIGIT = /\p{N}/u;

/**
 * Questions that differ in negation or in numbers never share a bucket, however close their vectors: "is X
 * allowed" and "is X not allowed", or "fees in 2023" and "fees in 2024", are different questions.
 */
function guardOf(question: string): string {
  const tokens = tokenize(question);
  const negations = tokens.filter((token) => NEGATIONS.has(token) || CONTRACTED_NOT.test(token)).length;
  const numbers = [...new Set(tokens.filter((token) => DIGIT.test(token)))].sort();
  return JSON.stringify([negations, numbers]);
}

export interface KeyMaterial {
  tenantId: string;
  /** sha256 of model, parameters and normalised prompt; the tenant is kept beside it, never hashed away. */
  exact: string;
  /** The normalised question, embedded for semantic lookups; empty: exact lookups only. */
  question: string;
  /** sha256 of what must be equal for a semantic hit: model, parameters, embedder, context and guard words. */
  bucket: string;
}

/** Every key belongs to a tenant: one without is a caller's bug, never a shared entry. */
export function checkTenant(key: CacheKey): void {
  if (typeof key.tenantId !== 'string' || key.tenantId === '') throw new TypeError('an inference cache key needs a tenantId');
}

/** The hashes of a key whose tenant has been checked (checkTenant). */
export function keyMaterial(key: CacheKey, embedderId: string): KeyMaterial {
  const params = stableJson(key.params ?? {});
  const prompt = normalizeText(key.prompt);
  const question = normalizeText(key.question);
  const context = question ? contextOf(prompt, question) : prompt;
  return {
    tenantId: key.tenantId,
    exact: sha256(JSON.stringify(['exact-v1', key.model, params, prompt])),
    question,
    bucket: sha256(JSON.stringify(['semantic-v1', key.model, params, embedderId, sha256(context), guardOf(question)])),
  };
}

/** A key as adapters get it: hashed once, in front of them, with its question embedded on demand. */
export interface PreparedKey {
  tenantId: string;
  exact: string;
  bucket: string;
  /**
   * The question's embedding, unit length, made on the first call only (later calls share it), so a lookup that
   * needs none costs none. Undefined for no question or a vector without features: exact lookups only. Rejects
   * when the embedder fails.
   */
  vector(): Promise<Float32Array | undefined>;
}

export function prepareKey(key: CacheKey, embedder: Embedder): PreparedKey {
  const { tenantId, exact, question, bucket } = keyMaterial(key, embedder.id);
  let embedded: Promise<Float32Array | undefined> | undefined;
  const embed = async (): Promise<Float32Array | undefined> => {
    if (!question) return undefined;
    const [vector] = await embedder.embed([question]);
    // The port promises unit vectors; normalised here once all the same (a copy: the embedder's stays its own),
    // so what is stored and compared is unit length whatever the embedder, and a cosine is a dot product.
    return vector && hasFeatures(vector) ? normalize(Float32Array.from(vector)) : undefined;
  };
  return { tenantId, exact, bucket, vector: () => (embedded ??= embed()) };
}

/** An adapter (memory, Redis) behind the front layer (index.ts), which checks the tenant, prepares keys and fails soft. */
export interface CacheAdapter {
  lookup(key: PreparedKey): Promise<CacheHit | undefined>;
  store(key: PreparedKey, answer: CachedAnswer): Promise<void>;
  close(): Promise<void>;
}

const BIG_ENDIAN = endianness() === 'BE';

/** A vector as base64 of its little-endian float32 bytes. */
export function encodeVector(vector: Float32Array): string {
  const bytes = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
  return (BIG_ENDIAN ? Buffer.from(bytes).swap32() : bytes).toString('base64');
}

/** The inverse of encodeVector; undefined for text that is not a whole number of float32s. */
export function decodeVector(text: string): Float32Array | undefined {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0 || bytes.length % 4 !== 0) return undefined;
  const copy = new Uint8Array(bytes); // aligned, and ours to swap
  if (BIG_ENDIAN) Buffer.from(copy.buffer).swap32();
  return new Float32Array(copy.buffer);
}

/** Whether a vector has any feature: the zero vector (a question of stopwords only) matches nothing. */
export function hasFeatures(vector: Float32Array): boolean {
  return vector.some((value) => value !== 0);
}

export interface SemanticEntry {
  /** The exact key of the answer this question was stored with. */
  member: string;
  /** Unit length, as prepareKey made it. */
  vector: Float32Array;
}

export interface SemanticMatch {
  member: string;
  similarity: number;
}

/**
 * The entries (oldest first) whose cosine similarity to `query` is at least `threshold`, most similar first (newest
 * first among equals). Query and entries are unit vectors (prepareKey), so the cosine is their dot product; a zero
 * vector's is 0, below any threshold (which is above 0).
 */
export function rankMatches(query: Float32Array, entries: Iterable<SemanticEntry>, threshold: number): SemanticMatch[] {
  const matches: (SemanticMatch & { order: number })[] = [];
  let next = 0;
  for (const { member, vector } of entries) {
    const order = next++;
    if (vector.length !== query.length) continue; // stored by an embedder of another size
    let dot = 0;
    for (let i = 0; i < query.length; i++) dot += query[i]! * vector[i]!;
    const similarity = Math.min(1, dot);
    if (similarity >= threshold) matches.push({ member, similarity, order });
  }
  return matches.sort((a, b) => b.similarity - a.similarity || b.order - a.order);
}
