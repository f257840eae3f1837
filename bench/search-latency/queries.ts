/** The search-latency bench's queries, seeded: common, rare and mixed terms of the corpus's vocabulary. */
import { COMMON_RANKS, CONTENT_WORDS, contentWord, SEED, seededRandom, type Vocabulary } from './corpus.ts';

export type QueryKind = 'common' | 'rare' | 'mixed';

export interface BenchQuery {
  kind: QueryKind;
  text: string;
}

export const QUERIES_PER_KIND = 80;
/** Content-word ranks a rare term is drawn from. */
export const RARE_RANKS: [number, number] = [5_000, CONTENT_WORDS];

/** Common: 3–5 frequent terms (long postings); rare: 2–4 rare ones; mixed: two of each. */
export function buildQueries(vocabulary: Vocabulary): BenchQuery[] {
  const random = seededRandom(SEED + 2);
  const words = (count: number, ranks: [number, number]) => Array.from({ length: count }, () => contentWord(vocabulary, random, ranks));
  const queries: BenchQuery[] = [];
  for (let i = 0; i < QUERIES_PER_KIND; i++) {
    queries.push({ kind: 'common', text: words(3 + Math.floor(random() * 3), COMMON_RANKS).join(' ') });
    queries.push({ kind: 'rare', text: words(2 + Math.floor(random() * 3), RARE_RANKS).join(' ') });
    queries.push({ kind: 'mixed', text: [...words(2, COMMON_RANKS), ...words(2, RARE_RANKS)].join(' ') });
  }
  return queries;
}
