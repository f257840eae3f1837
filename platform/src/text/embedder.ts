/**
 * The embedder port, and the local embedder behind it: offline, deterministic and stateless. It hashes a
 * text's features (stemmed words, character 4-grams within words) into a fixed number of dimensions, so the
 * same text always gets the same vector whatever else was indexed. A hashed vector carries lexical overlap,
 * not meaning: the 4-grams add partial matches between word forms the stemmer keeps apart ("tumour",
 * "tumor"; "oestrogen", "estrogen"). With no corpus statistics it has no IDF, so common words weigh as much as rare ones:
 * that, not the hashing, is what keeps it behind BM25 (see bench/retrieval.ts).
 */
import { analyze, ENGLISH_STOPWORDS, tokenize } from './analyzer.ts';

export interface Embedder {
  /** Model, version and dimensions (`local-hash-v1-768`): a knowledge base records which embedder built it. */
  readonly id: string;
  readonly dimensions: number;
  /** One L2-normalised vector per text, in order; a text with no features gets the zero vector. */
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** More dimensions, fewer collisions; on SciFact 1024 ranks better than 768 and stays well under pgvector's 2000-dimension index limit. */
export const DEFAULT_DIMENSIONS = 1024;

/** Feature families, hashed with different seeds so "cell" the word and "cell" the 4-gram never collide. */
const WORD_SEED = 0x9747b28c;
const CHAR_SEED = 0x1b873593;
const CHAR_GRAM = 4;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/**
 * MurmurHash3 (x86, 32-bit) of the UTF-16LE bytes of `text.slice(start, end)`: two code units make one
 * 32-bit block. Hashing a range of the string in place spares allocating every n-gram.
 */
export function murmur3(text: string, seed: number, start = 0, end = text.length): number {
  let h = seed >>> 0;
  let i = start;
  for (; i + 1 < end; i += 2) {
    h ^= scramble(text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16));
    h = Math.imul(rotl(h, 13), 5) + 0xe6546b64;
  }
  if (i < end) h ^= scramble(text.charCodeAt(i));
  h ^= (end - start) * 2;
  return finalMix(h);
}

function scramble(block: number): number {
  return Math.imul(rotl(Math.imul(block, 0xcc9e2d51), 15), 0x1b873593);
}

function finalMix(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Counts of hashed features; 32-bit hash collisions between distinct features are rare enough to ignore. */
type FeatureCounts = Map<number, number>;

function count(counts: FeatureCounts, hash: number): void {
  counts.set(hash, (counts.get(hash) ?? 0) + 1);
}

function wordFeatures(terms: string[]): FeatureCounts {
  const counts: FeatureCounts = new Map();
  for (const term of terms) count(counts, murmur3(term, WORD_SEED));
  return counts;
}

/** 4-grams of each content word framed as "<word>", so prefixes and suffixes are features of their own. */
function charFeatures(tokens: string[]): FeatureCounts {
  const counts: FeatureCounts = new Map();
  for (const token of tokens) {
    if (ENGLISH_STOPWORDS.has(token)) continue;
    const framed = `<${token}>`;
    for (let start = 0; start + CHAR_GRAM <= framed.length; start++) {
      count(counts, murmur3(framed, CHAR_SEED, start, start + CHAR_GRAM));
    }
  }
  return counts;
}

/**
 * Adds one feature family into the vector with sublinear term frequency (1 + ln tf), the family scaled to
 * unit L2 norm so words and 4-grams weigh the same however many 4-grams the words make. The hash picks the
 * dimension and its top bit the sign: collisions then cancel on average instead of piling up.
 */
function addFamily(vector: Float32Array, counts: FeatureCounts): void {
  if (counts.size === 0) return;
  let squaredNorm = 0;
  for (const tf of counts.values()) squaredNorm += (1 + Math.log(tf)) ** 2;
  const scale = 1 / Math.sqrt(squaredNorm);
  for (const [hash, tf] of counts) {
    const sign = hash >>> 31 ? -1 : 1;
    vector[hash % vector.length]! += sign * scale * (1 + Math.log(tf));
  }
}

/** Scales `vector` in place to unit L2 norm, and returns it; the zero vector stays zero. */
export function normalize(vector: Float32Array): Float32Array {
  let squaredNorm = 0;
  for (const value of vector) squaredNorm += value * value;
  if (squaredNorm === 0) return vector;
  const inverse = 1 / Math.sqrt(squaredNorm);
  for (let i = 0; i < vector.length; i++) vector[i]! *= inverse;
  return vector;
}

function hashEmbedding(text: string, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  addFamily(vector, wordFeatures(analyze(text)));
  addFamily(vector, charFeatures(tokenize(text)));
  return normalize(vector);
}

export class LocalHashEmbedder implements Embedder {
  readonly id: string;

  constructor(readonly dimensions: number = DEFAULT_DIMENSIONS) {
    if (!Number.isInteger(dimensions) || dimensions < 1) {
      throw new RangeError(`dimensions must be a positive integer, got ${dimensions}`);
    }
    this.id = `local-hash-v1-${dimensions}`;
  }

  embed(texts: string[]): Promise<Float32Array[]> {
    return Promise.resolve(texts.map((text) => hashEmbedding(text, this.dimensions)));
  }
}
