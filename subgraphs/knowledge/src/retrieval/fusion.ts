/**
 * Fusing ranked lists from different retrievers (lexical, vector) into one ranking. Each list is sorted
 * best first; a document missing from a list gets nothing from it.
 *
 * Reciprocal rank fusion uses ranks only, so it needs no calibration between BM25 scores (unbounded) and
 * cosine similarities, but it gives every list an equal say at each rank whatever its score margins. The
 * score blend rescales each list's scores to 0…1 (min-max) and adds them weighted, so a confident lexical
 * hit keeps its lead and the other list mostly breaks near-ties. On SciFact with the local hashed embedder
 * the blend keeps BM25's quality and RRF loses to it (bench/retrieval.ts), so hybrid search blends.
 */
import { byScoreDescending, type ScoredId } from './ranking.ts';

export interface RrfOptions {
  /** Damps the head of each list: a document at rank r (1-based) earns weight / (k + r). */
  k: number;
  /** One weight per list; 1 where absent. */
  weights?: readonly number[];
}

export const DEFAULT_RRF: RrfOptions = { k: 60 };

export interface BlendOptions {
  /** One weight per list; 1 where absent. */
  weights?: readonly number[];
}

export interface HybridWeights {
  lexical: number;
  vector: number;
}

/** The vector list weighs little: the local embedder has no IDF and ranks well below BM25. */
export const DEFAULT_HYBRID_WEIGHTS: HybridWeights = { lexical: 0.8, vector: 0.2 };

function weightOf(weights: readonly number[] | undefined, list: number): number {
  return weights?.[list] ?? 1;
}

function sumPerId(contributions: Iterable<[id: string, score: number]>): ScoredId[] {
  const sums = new Map<string, number>();
  for (const [id, score] of contributions) sums.set(id, (sums.get(id) ?? 0) + score);
  return [...sums].map(([id, score]) => ({ id, score })).sort(byScoreDescending);
}

/** A document's fused score is the sum of weight / (k + rank) over the lists it is in. */
export function rrf(lists: readonly ScoredId[][], options: RrfOptions = DEFAULT_RRF): ScoredId[] {
  return sumPerId(
    lists.flatMap((list, listIndex) => {
      const weight = weightOf(options.weights, listIndex);
      return list.map(({ id }, rank): [string, number] => [id, weight / (options.k + rank + 1)]);
    }),
  );
}

/** Scores rescaled to 0 (the list's lowest) … 1 (its highest); all 1 when the list's scores are equal. */
function minMax(list: readonly ScoredId[]): [string, number][] {
  let lowest = Infinity;
  let highest = -Infinity;
  for (const { score } of list) {
    lowest = Math.min(lowest, score);
    highest = Math.max(highest, score);
  }
  const range = highest - lowest;
  return list.map(({ id, score }) => [id, range > 0 ? (score - lowest) / range : 1]);
}

/** A document's fused score is the weighted sum of its min-max-normalised scores in the lists it is in. */
export function blend(lists: readonly ScoredId[][], options: BlendOptions = {}): ScoredId[] {
  return sumPerId(
    lists.flatMap((list, listIndex) => {
      const weight = weightOf(options.weights, listIndex);
      return minMax(list).map(([id, score]): [string, number] => [id, weight * score]);
    }),
  );
}

/** Hybrid search's fusion of a lexical and a vector ranking. */
export function fuseHybrid(lexical: ScoredId[], vector: ScoredId[], weights: HybridWeights = DEFAULT_HYBRID_WEIGHTS): ScoredId[] {
  return blend([lexical, vector], { weights: [weights.lexical, weights.vector] });
}
