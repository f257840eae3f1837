/**
 * The search-latency bench's look under the searches: the query plans PostgreSQL takes, and pgvector's HNSW
 * index against an exact scan of the same statement.
 */
import type { Database, Transaction } from '@jarvis/platform/db';
import { lexicalSearchStatement } from '../../subgraphs/knowledge/src/chunks/store.ts';
import { searchSql } from '../../subgraphs/knowledge/src/vectors/pgvector.ts';
import { percentile } from '../load.ts';
import type { BenchQuery } from './queries.ts';
import { milliseconds, progress } from './report.ts';
import { TOP_K } from './search.ts';
import { embedder, type Target } from './target.ts';
import { KNOWLEDGE_BASE_IDS, READER, TENANT_ID } from './tenant.ts';

const SCOPE = { knowledgeBaseIds: KNOWLEDGE_BASE_IDS, reader: [`user:${READER.userId}`], unrestrictedKnowledgeBaseIds: [] };
/** What the pgvector store sets before it searches. */
const HNSW_SETTINGS = `SELECT set_config('hnsw.ef_search', '100', true), set_config('hnsw.iterative_scan', 'strict_order', true)`;
/** Only the HNSW index returns rows in distance order, so without sorting the planner must take it. */
const FORCE_HNSW = `SELECT set_config('enable_sort', 'off', true)`;
const FORCE_EXACT = `SELECT set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`;
const DIAGNOSTIC_QUERIES = 40;

/** The pgvector store's search statement and its parameters for `text`, as it runs them (pool of 100). */
async function vectorStatement(db: Database, text: string): Promise<{ sql: string; params: unknown[] }> {
  const [schema] = await db.withSystem((tx) =>
    tx.query<{ name: string }>(`SELECT extnamespace::regnamespace::text AS name FROM pg_extension WHERE extname = 'vector'`),
  );
  const [vector] = await embedder.embed([text]);
  return { sql: searchSql(schema!.name), params: [`[${vector!.join(',')}]`, SCOPE.knowledgeBaseIds, SCOPE.reader, 100, []] };
}

function inTenantWith<T>(db: Database, settings: string[], work: (tx: Transaction) => Promise<T>): Promise<T> {
  return db.withTenant(TENANT_ID, async (tx) => {
    for (const setting of settings) await tx.query(setting);
    return work(tx);
  });
}

/** EXPLAIN ANALYZE of a query's lexical and (pgvector) vector statements, to stderr: which plans are taken. */
export async function printPlans(target: Target, query: string, when: string): Promise<void> {
  const explain = async ({ sql, params }: { sql: string; params: unknown[] }, settings: string[] = []) => {
    const rows = await inTenantWith(target.db, settings, (tx) => tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params));
    return rows.map((row) => row['QUERY PLAN'].replace(/'\[[^\]]*\]'/g, "'[…]'")).join('\n');
  };
  progress(`${target.label}, ${when}: lexical plan for "${query}"\n${await explain(lexicalSearchStatement({ ...SCOPE, text: query, topK: 100 })!)}`);
  if (target.vectors.kind === 'pgvector') {
    progress(`${target.label}, ${when}: vector plan\n${await explain(await vectorStatement(target.db, query), [HNSW_SETTINGS])}`);
  }
}

/** The vector statement with its plan forced each way, statement time only: what the index saves and what it misses. */
export async function diagnoseHnsw(target: Target, queries: BenchQuery[]): Promise<string | undefined> {
  if (target.vectors.kind !== 'pgvector') return undefined;
  const nearest = async (text: string, plan: string) => {
    const { sql, params } = await vectorStatement(target.db, text);
    return inTenantWith(target.db, [HNSW_SETTINGS, plan], async (tx) => {
      const started = performance.now();
      const ids = (await tx.query<{ id: string }>(sql, params)).slice(0, TOP_K).map((row) => row.id);
      return { ids, ms: performance.now() - started };
    });
  };
  const hnswMs: number[] = [];
  const exactMs: number[] = [];
  let found = 0;
  let wanted = 0;
  for (const query of queries.slice(0, DIAGNOSTIC_QUERIES)) {
    const hnsw = await nearest(query.text, FORCE_HNSW);
    const exact = await nearest(query.text, FORCE_EXACT);
    hnswMs.push(hnsw.ms);
    exactMs.push(exact.ms);
    found += exact.ids.filter((id) => hnsw.ids.includes(id)).length;
    wanted += exact.ids.length;
  }
  const p50p95 = (values: number[]) => `${milliseconds(percentile(values, 0.5))} / ${milliseconds(percentile(values, 0.95))}`;
  return (
    `pgvector's search statement alone, plan forced, ${hnswMs.length} queries: HNSW index p50/p95 ${p50p95(hnswMs)} ms, ` +
    `exact scan ${p50p95(exactMs)} ms; HNSW recall@${TOP_K} against the exact scan ${(found / Math.max(1, wanted)).toFixed(3)}.`
  );
}
