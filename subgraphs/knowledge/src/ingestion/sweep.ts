/**
 * A backstop for lost ingestion jobs. A job's event is durable on RabbitMQ, but the in-process bus loses
 * what it holds when its process ends, and a dead-lettered job is gone from the queue: documents left
 * PENDING or PROCESSING without a change for `staleAfterMs` are queued again. Queuing twice is harmless
 * (a job runs to the same result), so two replicas sweeping at once do no damage either.
 */
import { tenantSchemas, type Database, type Transaction } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';
import * as documents from '../documents/store.ts';
import { queueIngestion } from './worker.ts';

export interface SweepOptions {
  db: Database;
  log: Logger;
  outbox: { notify(): void };
  /** How long an unfinished document may sit untouched before its job counts as lost. */
  staleAfterMs: number;
  /** How often to look. */
  everyMs: number;
}

const BATCH = 100;

export function startIngestionSweep(options: SweepOptions): { stop(): void; sweep(): Promise<number> } {
  const sweep = async () => {
    let requeued = 0;
    for (const schema of await tenantSchemas(options.db)) requeued += await sweepSchema(options, schema);
    if (requeued > 0) {
      options.log.warn({ requeued }, 'requeued ingestion jobs that stopped unfinished');
      options.outbox.notify();
    }
    return requeued;
  };
  const timer = setInterval(() => {
    sweep().catch((error: unknown) => options.log.error({ err: error }, 'ingestion sweep failed'));
  }, options.everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer), sweep };
}

async function sweepSchema({ db, staleAfterMs }: SweepOptions, schema: string): Promise<number> {
  return db.withSystem(async (tx) => {
    const stale = await documents.staleUnfinished(tx, schema, staleAfterMs, BATCH);
    if (stale.length === 0) return 0;
    await inSchema(tx, schema);
    await documents.requeue(tx, schema, stale.map((doc) => doc.id));
    for (const doc of stale) await queueIngestion(tx, doc, isolationOf(db, schema));
    return stale.length;
  });
}

/** A DEDICATED tenant's schema is the service schema's name with a suffix. */
const isolationOf = (db: Database, schema: string) => (schema === db.schema ? 'SHARED' : 'DEDICATED');

/** The outbox the events go to is the one of the documents' schema. */
async function inSchema(tx: Transaction, schema: string): Promise<void> {
  await tx.query(`SELECT set_config('search_path', $1, true)`, [schema]);
}
