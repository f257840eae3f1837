/**
 * Retrieval quality against relevance judgements (qrels): graded relevance per document id, 0 or absent for
 * a document not judged relevant.
 */

export type Qrels = ReadonlyMap<string, number>;

function discountedGain(grades: number[]): number {
  return grades.reduce((sum, grade, index) => sum + grade / Math.log2(index + 2), 0);
}

/**
 * nDCG@k with the grade as gain and a log2(rank + 1) discount, as trec_eval (and so BEIR) computes it; the
 * ideal DCG ranks the judged documents best first. 0 when nothing is relevant.
 */
export function ndcgAtK(ranked: readonly string[], qrels: Qrels, k: number): number {
  const ideal = discountedGain([...qrels.values()].filter((grade) => grade > 0).sort((a, b) => b - a).slice(0, k));
  if (ideal === 0) return 0;
  return discountedGain(ranked.slice(0, k).map((id) => qrels.get(id) ?? 0)) / ideal;
}

/** The share of the relevant documents found in the first k; 0 when nothing is relevant. */
export function recallAtK(ranked: readonly string[], qrels: Qrels, k: number): number {
  const relevant = [...qrels].filter(([, grade]) => grade > 0).length;
  if (relevant === 0) return 0;
  const found = new Set(ranked.slice(0, k).filter((id) => (qrels.get(id) ?? 0) > 0));
  return found.size / relevant;
}
