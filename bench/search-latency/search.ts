/**
 * The search-latency bench's searches, through SearchService as a request's context builds it: every mode,
 * top 10 over all the tenant's knowledge bases, timed per query.
 */
import { KnowledgeBaseService } from '../../subgraphs/knowledge/src/knowledge-bases/service.ts';
import { LocalReranker } from '../../subgraphs/knowledge/src/retrieval/rerank.ts';
import { SearchService, type SearchMode } from '../../subgraphs/knowledge/src/search/service.ts';
import { loadAverage } from '../load.ts';
import type { BenchQuery, QueryKind } from './queries.ts';
import { progress } from './report.ts';
import { embedder, log, type Target } from './target.ts';
import { READER } from './tenant.ts';

export const TOP_K = 10;
export const WARM_UP_QUERIES = 10;

const MODES: { label: string; mode: SearchMode; rerank: boolean }[] = [
  { label: 'LEXICAL', mode: 'LEXICAL', rerank: false },
  { label: 'VECTOR', mode: 'VECTOR', rerank: false },
  { label: 'HYBRID', mode: 'HYBRID', rerank: false },
  { label: 'HYBRID + rerank (local)', mode: 'HYBRID', rerank: true },
];

export interface ModeRun {
  label: string;
  latencies: Map<QueryKind, number[]>;
  emptyAnswers: number;
}

/** The services anew for every search, as each request's context builds them: no loader cache carries over. */
function searchOn(target: Target) {
  const deps = { vectors: async () => target.vectors, embedder, reranker: new LocalReranker() };
  return (query: string, mode: SearchMode, rerank: boolean) => {
    const kbs = new KnowledgeBaseService(target.db, READER, deps.vectors, { notify() {} });
    return new SearchService(target.db, READER, kbs, deps, log).search({ query, knowledgeBaseIds: null, topK: TOP_K, mode, rerank });
  };
}

/** Every mode after a warm-up, except that the exact store's VECTOR-bearing modes get `vectorQueries` queries. */
export async function runModes(target: Target, queries: BenchQuery[], vectorQueries: number): Promise<ModeRun[]> {
  const search = searchOn(target);
  const runs: ModeRun[] = [];
  for (const { label, mode, rerank } of MODES) {
    const asked = mode === 'LEXICAL' ? queries : queries.slice(0, vectorQueries);
    progress(`${target.label}: ${label}, ${asked.length} queries; load ${loadAverage()}`);
    for (const query of asked.slice(0, WARM_UP_QUERIES)) await search(query.text, mode, rerank);
    const run: ModeRun = { label, latencies: new Map(), emptyAnswers: 0 };
    for (const query of asked) {
      const started = performance.now();
      const answer = await search(query.text, mode, rerank);
      run.latencies.set(query.kind, [...(run.latencies.get(query.kind) ?? []), performance.now() - started]);
      if (answer.length === 0) run.emptyAnswers++;
    }
    runs.push(run);
  }
  return runs;
}
