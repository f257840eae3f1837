/**
 * Planner statistics for the chunk tables, kept fresh by the ingestion that fills them. Until a table is
 * analyzed the planner takes it for nearly empty, and after it has grown a lot it plans for the size it had:
 * either way a BM25 search can read the wrong plan. PGlite has no autovacuum, so nothing else gathers them.
 *
 * Each process counts the chunk and posting rows it wrote per schema (the service's, or a DEDICATED tenant's)
 * since its last ANALYZE there, and analyzes again once they exceed a fifth of what the planner last counted,
 * and at least 1,000 — autovacuum's rule, a little less eager. The growth is geometric, so the ANALYZEs of
 * an import of any size cost a bounded multiple of one, and each samples a bounded number of rows.
 * The same on PostgreSQL, where autovacuum would get there too: ANALYZE blocks neither readers nor writers,
 * and this way a search right after a large import plans with its statistics rather than up to a minute
 * (autovacuum_naptime) later; with several replicas each counts its own writes, and autovacuum covers the rest.
 * Rows deleted are not counted: stale statistics of a table that shrank mislead the planner far less.
 */
import type { TenantIsolation } from '@jarvis/platform/contracts';
import { dedicatedSchemaName, type Database } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';
import { analyzeChunks, plannedChunkRows } from './store.ts';

/** Rows written since the last ANALYZE below which another is never worth it. */
export const ANALYZE_MIN_ROWS = 1_000;
/** The growth, as a fraction of the rows the planner last counted, beyond which the tables are analyzed again. */
export const ANALYZE_GROWTH = 0.2;

/**
 * Per database (one per service in a process) and schema: rows written since the last ANALYZE there, and the
 * rows the planner counted after it — read once and again after each ANALYZE here, not per job. (Another
 * replica's ANALYZE, or autovacuum's, only raises the true count: this one then analyzes a little early.)
 */
const writes = new WeakMap<Database, Map<string, { written: number; planned?: number }>>();

function writesTo(db: Database, schema: string) {
  let bySchema = writes.get(db);
  if (!bySchema) writes.set(db, (bySchema = new Map()));
  let state = bySchema.get(schema);
  if (!state) bySchema.set(schema, (state = { written: 0 }));
  return state;
}

export interface ChunkWrites {
  tenantId: string;
  isolation: TenantIsolation;
  /** Chunk and posting rows a committed transaction wrote. */
  rows: number;
}

/**
 * Counts rows a committed transaction wrote to the tenant's chunk tables and analyzes them when they have
 * grown enough. Call it outside any transaction. Never throws: without statistics search is slower, not
 * wrong, so a failure is logged and the next call tries again. True when it analyzed.
 */
export async function chunksWritten(db: Database, log: Logger, { tenantId, isolation, rows }: ChunkWrites): Promise<boolean> {
  const schema = isolation === 'DEDICATED' ? dedicatedSchemaName(db.schema, tenantId) : db.schema;
  const state = writesTo(db, schema);
  state.written += rows;
  if (state.written <= ANALYZE_MIN_ROWS) return false;
  const analyzing = state.written;
  let taken = 0;
  try {
    state.planned ??= await plannedChunkRows(db, schema);
    if (analyzing <= ANALYZE_GROWTH * state.planned) return false;
    // Taken before the ANALYZE, so jobs finishing meanwhile count towards the next one instead of starting another.
    state.written -= taken = analyzing;
    await analyzeChunks(db, schema);
    state.planned = await plannedChunkRows(db, schema);
    log.debug({ schema, rowsWritten: analyzing }, 'chunk tables analyzed');
    return true;
  } catch (error) {
    state.written += taken;
    log.warn({ err: error, schema }, 'could not gather planner statistics for the chunk tables; will try again after the next document');
    return false;
  }
}
