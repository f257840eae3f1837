/**
 * The transactional outbox: a producer writes its events in the same transaction as the data they
 * describe (`writeEvent`), so both commit or neither does; a relay then publishes committed events to the
 * bus. Each service schema has an `outbox` table (created with the schema, platform/src/db/migrate.ts) to
 * which the application role may only add rows of its own tenant; the relay reads and marks them as the
 * schema's owner. Delivery is at least once: consumers count each event id once.
 */
import { currentTraceContext } from './telemetry.ts';
import { assertBusName } from './bus/types.ts';
import type { Bus, BusEvent } from './bus/index.ts';
import { tenantSchemas, type Database, type Transaction } from './db/index.ts';
import { isUuid } from './ids.ts';
import type { Logger } from './logger.ts';

/** Adds `event` to the outbox within the caller's transaction; it is published only if that commits. */
export function writeEvent(tx: Transaction, topic: string, event: BusEvent): Promise<void> {
  return writeEvents(tx, topic, [event]);
}

/** Adds `events` to the outbox in one statement, within the caller's transaction. */
export async function writeEvents(tx: Transaction, topic: string, events: readonly BusEvent[]): Promise<void> {
  assertBusName('topic', topic);
  if (events.length === 0) return;
  for (const event of events) if (!isUuid(event.id)) throw new Error(`an outbox event's id must be a UUID, got "${event.id}"`);
  await tx.query(
    `INSERT INTO outbox (id, tenant_id, topic, event)
     SELECT id, tenant_id, $1, event FROM unnest($2::uuid[], $3::uuid[], $4::jsonb[]) AS e(id, tenant_id, event)`,
    [topic, events.map((e) => e.id), events.map((e) => e.tenantId), events.map((e) => JSON.stringify(withTraceContext(e)))],
  );
}

/** The event with the trace context of the work writing it, so its delivery continues that trace. */
function withTraceContext(event: BusEvent): BusEvent {
  const traceContext = event.traceContext ?? currentTraceContext();
  return traceContext ? { ...event, traceContext } : event;
}

export interface OutboxRelayOptions {
  db: Database;
  bus: Bus;
  log: Logger;
  /** How long the relay waits between looks at the outbox, unless `notify` wakes it earlier. */
  pollMs: number;
  /** Rows claimed per transaction. */
  batchSize?: number;
  /** How long published rows are kept (for inspection) before the relay deletes them. */
  keepPublishedMs?: number;
}

export interface OutboxRelay {
  /** Relays now rather than at the next poll, e.g. right after a producer's transaction committed. */
  notify(): void;
  /** Finishes the batch in progress and stops. */
  stop(): Promise<void>;
}

interface OutboxRow {
  id: string;
  topic: string;
  event: BusEvent;
}

const HOUR_MS = 3_600_000;

/**
 * Publishes committed outbox rows, oldest first, from the service schema and every DEDICATED tenant's
 * schema. A batch is claimed with `FOR UPDATE SKIP LOCKED` and marked published in the same transaction,
 * so relays in several replicas never publish one row at the same time; a relay that dies between
 * publishing and committing leaves its rows unmarked, and they are published again.
 */
export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, log, pollMs, batchSize = 100, keepPublishedMs = 24 * HOUR_MS } = options;
  let stopped = false;
  let notified = false;
  let wake: (() => void) | undefined;
  let lastPruned = 0;

  async function drain(schema: string): Promise<void> {
    let more = true;
    while (more && !stopped) more = (await relayBatch(options, schema, batchSize)) === 'more';
  }

  async function relayPending(): Promise<void> {
    const schemas = await tenantSchemas(db);
    for (const schema of schemas) await drain(schema);
    if (Date.now() - lastPruned >= Math.min(keepPublishedMs, HOUR_MS)) {
      lastPruned = Date.now();
      for (const schema of schemas) await prunePublished(db, schema, keepPublishedMs);
    }
  }

  function pause(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, pollMs);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  }

  const running = (async () => {
    while (!stopped) {
      notified = false;
      await relayPending().catch((error: unknown) => log.error({ err: error }, 'outbox relay failed; trying again'));
      if (!notified && !stopped) await pause();
    }
  })();

  return {
    notify() {
      notified = true;
      wake?.();
    },
    async stop() {
      stopped = true;
      wake?.();
      await running;
    },
  };
}

/**
 * Claims, publishes and marks one batch. Rows whose publishing failed stay unmarked for the next round,
 * and the round ends there: the bus is in trouble.
 */
async function relayBatch({ db, bus, log }: OutboxRelayOptions, schema: string, batchSize: number): Promise<'more' | 'done'> {
  return db.withSystem(async (tx) => {
    const rows = await tx.query<OutboxRow>(
      `SELECT id, topic, event FROM ${schema}.outbox WHERE published_at IS NULL
       ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [batchSize],
    );
    const results = await Promise.allSettled(rows.map((row) => bus.publish(row.topic, row.event)));
    const published = rows.filter((_, i) => results[i]!.status === 'fulfilled').map((row) => row.id);
    if (published.length > 0) {
      await tx.query(`UPDATE ${schema}.outbox SET published_at = now() WHERE id = ANY($1::uuid[])`, [published]);
    }
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) {
      log.warn({ err: failure.reason, schema, unpublished: rows.length - published.length }, 'outbox events not published; will retry');
      return 'done';
    }
    return rows.length === batchSize ? 'more' : 'done';
  });
}

async function prunePublished(db: Database, schema: string, keepPublishedMs: number): Promise<void> {
  await db.withSystem((tx) =>
    tx.query(`DELETE FROM ${schema}.outbox WHERE published_at < now() - $1 * interval '1 millisecond'`, [keepPublishedMs]),
  );
}
