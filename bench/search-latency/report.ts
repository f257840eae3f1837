/** How the search-latency bench writes: numbers formatted for its markdown tables, progress to stderr. */
import type { Database } from '@jarvis/platform/db';
import { percentile } from '../load.ts';
import type { QueryKind } from './queries.ts';
import type { ModeRun } from './search.ts';
import { TENANT_ID } from './tenant.ts';

export const milliseconds = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
export const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000).toLocaleString('en-US');
export const thousands = (value: number) => value.toLocaleString('en-US');
export const progress = (message: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);

export function latencyTable(runs: ModeRun[]): string[] {
  return [
    '| mode | queries | p50 ms | p95 ms | p99 ms | common p50 | rare p50 | mixed p50 | empty answers |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map((run) => {
      const all = [...run.latencies.values()].flat();
      const kindP50 = (kind: QueryKind) => milliseconds(percentile(run.latencies.get(kind) ?? [], 0.5));
      const cells = [all.length, ...[0.5, 0.95, 0.99].map((f) => milliseconds(percentile(all, f))), kindP50('common'), kindP50('rare'), kindP50('mixed'), run.emptyAnswers];
      return `| ${run.label} | ${cells.join(' | ')} |`;
    }),
  ];
}

export async function storeSizes(db: Database): Promise<string> {
  const [postings] = await db.withTenant(TENANT_ID, (tx) => tx.query<{ count: number }>(`SELECT count(*)::integer AS count FROM chunk_terms`));
  const tables = await db.withSystem((tx) =>
    tx.query<{ name: string; size: string }>(
      `SELECT relname AS name, pg_size_pretty(pg_total_relation_size(oid)) AS size FROM pg_class
       WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'
         AND relname IN ('chunks', 'chunk_terms', 'chunk_vectors', 'chunk_embeddings') ORDER BY relname`,
    ),
  );
  return `${thousands(postings!.count)} postings; with their indexes ${tables.map((row) => `${row.name} ${row.size}`).join(', ')}`;
}
