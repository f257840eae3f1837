/**
 * The rerank port, and the local reranker behind it: offline, deterministic, about 10 ms for a hundred
 * abstracts. A cross-encoder service is the other adapter (rerank-http.ts).
 *
 * The local reranker keeps the first-stage score and adds how much of the query each passage covers: the
 * share of the query's terms it contains, each term weighted by its IDF within the candidates, in its text
 * and in its title. Weighting within the candidates, not the corpus, is the point: a term every candidate
 * has (the one that retrieved them all) separates nothing, while a query term only a few candidates have
 * tells them apart. BM25 rewards repeating one matched term; coverage rewards matching the rest of the claim.
 *
 * On SciFact (bench/retrieval.ts) over the hybrid top 100: nDCG@10 0.6948 → 0.7086. The weights were chosen
 * on the queries with even ids (0.6778 → 0.6896) and hold on the odd ones (0.7126 → 0.7286). Tried and
 * dropped, each adding at most 0.003 on held-out queries beyond these two: term proximity (pairwise
 * distance), ordered and unordered query bigrams, best sentence or 20-term window coverage, corpus rather
 * than candidate IDF, BM25 within the candidates, the local embedder's cosine to the title or the best
 * sentence. The first-stage score matters: with ranks in its place (linear, 1 → 0) these
 * weights fall to 0.6871, below the hybrid list, so the local reranker requires scores.
 */
import { analyze, tokenize } from '@jarvis/platform/text';
import { topK, type ScoredId } from './ranking.ts';

export interface RerankPassage {
  id: string;
  /** The passage as indexed. */
  text: string;
  /** A document title or heading path; rerankers weigh a query's match with it, and send it when `text` lacks it. */
  title?: string;
  /** The first-stage score (any scale, higher is better); required by the local reranker, unused by services. */
  score?: number;
}

export interface Reranker {
  /** Model and version, recorded with results. */
  readonly id: string;
  /** The `topN` best of the passages, best first; passages are given best first by the first stage. */
  rerank(query: string, passages: RerankPassage[], topN: number): Promise<ScoredId[]>;
}

export interface LocalRerankOptions {
  /** Weight of the IDF-weighted share of the query's terms in the passage (title included), 0…1. */
  coverageWeight: number;
  /** Weight of the same share in the title alone. */
  titleWeight: number;
}

/** The first-stage prior spans 0…1 within the candidates, so these weights are relative to it. */
export const DEFAULT_LOCAL_RERANK: LocalRerankOptions = { coverageWeight: 1.25, titleWeight: 0.75 };

/** The query terms a passage contains. */
interface Matches {
  terms: ReadonlySet<string>;
  titleTerms: ReadonlySet<string>;
}

export class LocalReranker implements Reranker {
  readonly id = 'local-coverage-v1';

  constructor(private readonly options: LocalRerankOptions = DEFAULT_LOCAL_RERANK) {}

  async rerank(query: string, passages: RerankPassage[], topN: number): Promise<ScoredId[]> {
    const prior = firstStagePrior(passages);
    const queryTerms = new Set(analyze(query));
    const matches = passages.map((passage) => matchesOf(passage, queryTerms));
    const weights = candidateIdf(queryTerms, matches);
    const coverage = (terms: ReadonlySet<string>) => coverageOf(terms, weights);
    const { coverageWeight, titleWeight } = this.options;
    const scores = matches.map(
      ({ terms, titleTerms }, i) => prior[i]! + coverageWeight * coverage(terms) + titleWeight * coverage(titleTerms),
    );
    return topK(passages.length, (i) => scores[i]!, (i) => passages[i]!.id, topN);
  }
}

function matchesOf(passage: RerankPassage, queryTerms: ReadonlySet<string>): Matches {
  const titleTerms = matchedTerms(passage.title ?? '', queryTerms);
  return { terms: matchedTerms(passage.text, queryTerms, titleTerms), titleTerms };
}

const termsByToken = new Map<string, string[]>();

/**
 * The query terms among the text's analyzer terms. A token's terms depend on the token alone, so they are
 * memoised (as the analyzer memoises stems): reranking reads the same passages query after query, and on
 * SciFact the memo makes reranking a hundred abstracts 2–3 times faster than analysing each from scratch.
 */
function matchedTerms(text: string, queryTerms: ReadonlySet<string>, including: Iterable<string> = []): Set<string> {
  const matched = new Set(including);
  for (const token of tokenize(text)) {
    for (const term of termsOf(token)) if (queryTerms.has(term)) matched.add(term);
  }
  return matched;
}

function termsOf(token: string): string[] {
  let terms = termsByToken.get(token);
  if (terms === undefined) {
    terms = analyze(token);
    if (termsByToken.size < 500_000) termsByToken.set(token, terms);
  }
  return terms;
}

/** Each query term's IDF among the candidates (BM25's form, kept positive), normalised to sum to 1. */
function candidateIdf(queryTerms: ReadonlySet<string>, passages: Matches[]): Map<string, number> {
  const count = passages.length;
  const terms = [...queryTerms];
  const idf = terms.map((term) => {
    const frequency = passages.reduce((sum, { terms }) => sum + (terms.has(term) ? 1 : 0), 0);
    return Math.log(1 + (count - frequency + 0.5) / (frequency + 0.5));
  });
  const total = idf.reduce((sum, value) => sum + value, 0);
  return new Map(terms.map((term, i) => [term, total > 0 ? idf[i]! / total : 0]));
}

function coverageOf(terms: ReadonlySet<string>, weights: ReadonlyMap<string, number>): number {
  let covered = 0;
  for (const [term, weight] of weights) if (terms.has(term)) covered += weight;
  return covered;
}

/** First-stage scores rescaled to 0…1 within the candidates (min-max), so any scorer's scale works. */
function firstStagePrior(passages: RerankPassage[]): number[] {
  const scores = passages.map(({ score }) => score);
  if (!scores.every((score): score is number => Number.isFinite(score))) {
    throw new RangeError('the local reranker needs every passage\'s first-stage score');
  }
  const lowest = Math.min(...scores);
  const range = Math.max(...scores) - lowest;
  return scores.map((score) => (range > 0 ? (score - lowest) / range : 1));
}
