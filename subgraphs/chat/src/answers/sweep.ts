/**
 * Ends answers whose generator died (its replica crashed or was killed): a STREAMING answer its generator has
 * not touched for `staleAfterMs` gets the text its events hold, status ERROR and a last ERROR event
 * (INTERRUPTED), so its readers stop waiting. Two replicas sweeping at once skip each other's rows.
 */
import { tenantSchemas, type Database, type Transaction } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';

export interface AnswerSweepOptions {
  db: Database;
  log: Logger;
  staleAfterMs: number;
  everyMs: number;
}

const BATCH = 100;
const INTERRUPTED = { code: 'INTERRUPTED', message: 'the answer stopped unfinished: the service generating it went away' };

export function startAnswerSweep(options: AnswerSweepOptions): { stop(): void; sweep(): Promise<number> } {
  const sweep = async () => {
    let ended = 0;
    for (const schema of await tenantSchemas(options.db)) ended += await options.db.withSystem((tx) => endStale(tx, schema, options.staleAfterMs));
    if (ended > 0) options.log.warn({ ended }, 'ended answers whose generator went away');
    return ended;
  };
  const timer = setInterval(() => {
    sweep().catch((error: unknown) => options.log.error({ err: error }, 'answer sweep failed'));
  }, options.everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer), sweep };
}

async function endStale(tx: Transaction, schema: string, staleAfterMs: number): Promise<number> {
  const stale = await tx.query<{ id: string; tenantId: string }>(
    `SELECT id, tenant_id AS "tenantId" FROM ${schema}.messages
     WHERE status = 'STREAMING' AND touched_at < clock_timestamp() - $1 * interval '1 millisecond'
     ORDER BY touched_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [staleAfterMs, BATCH],
  );
  for (const { id, tenantId } of stale) {
    await tx.query(
      `INSERT INTO ${schema}.answer_events (message_id, tenant_id, seq, type, payload)
       SELECT $1, $2, coalesce(max(seq), 0) + 1, 'ERROR', $3::jsonb FROM ${schema}.answer_events WHERE message_id = $1`,
      [id, tenantId, JSON.stringify({ error: INTERRUPTED })],
    );
    await tx.query(
      `UPDATE ${schema}.messages SET status = 'ERROR', error = $2,
         content = coalesce((SELECT string_agg(payload->>'delta', '' ORDER BY seq) FROM ${schema}.answer_events
                             WHERE message_id = $1 AND type = 'TOKEN'), '')
       WHERE id = $1`,
      [id, INTERRUPTED.message],
    );
  }
  return stale.length;
}
