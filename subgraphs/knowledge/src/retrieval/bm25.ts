/**
 * Okapi BM25 in memory over analyzer terms: the reference for the lexical search mode. An inverted index
 * of (document, term frequency) postings; a query adds each of its terms' postings into one score array,
 * so a query costs the length of its terms' postings, not the size of the corpus.
 */
import { analyze } from '@jarvis/platform/text';
import { topK, type ScoredId } from './ranking.ts';

export interface Bm25Options {
  /** Term-frequency saturation: how much a term's tenth occurrence still adds. */
  k1: number;
  /** Length normalisation: 0 ignores document length, 1 fully scales term frequency by it. */
  b: number;
}

/** Robertson's and Lucene's defaults: on SciFact every k1 in 0.9–1.5 and b in 0.3–0.9 is within ±0.006 nDCG@10 of them. */
export const DEFAULT_BM25: Bm25Options = { k1: 1.2, b: 0.75 };

export interface IndexedText {
  id: string;
  text: string;
}

interface Postings {
  docs: number[];
  frequencies: number[];
}

function termFrequencies(terms: string[]): Map<string, number> {
  const frequencies = new Map<string, number>();
  for (const term of terms) frequencies.set(term, (frequencies.get(term) ?? 0) + 1);
  return frequencies;
}

export class Bm25Index {
  private readonly ids: string[] = [];
  private readonly lengths: number[] = [];
  private readonly postings = new Map<string, Postings>();
  private totalLength = 0;
  private lengthNorms: Float64Array | undefined;

  constructor(
    private readonly options: Bm25Options = DEFAULT_BM25,
    private readonly analyzer: (text: string) => string[] = analyze,
  ) {}

  get size(): number {
    return this.ids.length;
  }

  /** Adds documents; an id indexed twice is two documents, so callers index each document once. */
  index(docs: IndexedText[]): void {
    for (const doc of docs) this.add(doc);
    this.lengthNorms = undefined;
  }

  /** The `k` documents scoring highest for the query; documents that share no term with it are not returned. */
  search(query: string, k: number): ScoredId[] {
    const scores = new Float64Array(this.ids.length);
    const matched: number[] = [];
    for (const [term, queryFrequency] of termFrequencies(this.analyzer(query))) {
      const postings = this.postings.get(term);
      if (postings) this.addTermScores(postings, queryFrequency, scores, matched);
    }
    return topK(matched.length, (i) => scores[matched[i]!]!, (i) => this.ids[matched[i]!]!, k);
  }

  /** Robertson–Spärck Jones IDF, kept positive (as Lucene does) so a very common term never counts against a match. */
  private idf(documentFrequency: number): number {
    const n = this.ids.length;
    return Math.log(1 + (n - documentFrequency + 0.5) / (documentFrequency + 0.5));
  }

  private addTermScores(postings: Postings, queryFrequency: number, scores: Float64Array, matched: number[]): void {
    const { k1 } = this.options;
    const weight = queryFrequency * this.idf(postings.docs.length) * (k1 + 1);
    const norms = this.norms();
    for (let i = 0; i < postings.docs.length; i++) {
      const doc = postings.docs[i]!;
      const frequency = postings.frequencies[i]!;
      if (scores[doc] === 0) matched.push(doc);
      scores[doc]! += (weight * frequency) / (frequency + norms[doc]!);
    }
  }

  /** k1·(1 − b + b·|d|/avgdl) per document, computed once per change of the corpus. */
  private norms(): Float64Array {
    if (this.lengthNorms) return this.lengthNorms;
    const { k1, b } = this.options;
    const averageLength = this.totalLength / Math.max(1, this.ids.length) || 1;
    this.lengthNorms = Float64Array.from(this.lengths, (length) => k1 * (1 - b + (b * length) / averageLength));
    return this.lengthNorms;
  }

  private add(doc: IndexedText): void {
    const docIndex = this.ids.push(doc.id) - 1;
    const terms = this.analyzer(doc.text);
    this.lengths.push(terms.length);
    this.totalLength += terms.length;
    for (const [term, frequency] of termFrequencies(terms)) {
      let postings = this.postings.get(term);
      if (!postings) this.postings.set(term, (postings = { docs: [], frequencies: [] }));
      postings.docs.push(docIndex);
      postings.frequencies.push(frequency);
    }
  }
}
