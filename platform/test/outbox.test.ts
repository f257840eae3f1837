import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { openBus, type Bus, type BusEvent } from '@jarvis/platform/bus';
import type { Database } from '@jarvis/platform/db';
import { startOutboxRelay, writeEvent, type OutboxRelayOptions } from '@jarvis/platform/outbox';
import { databaseVariants, openTestDatabase, waitFor } from '@jarvis/platform/testing';

/** What a consumer keeps: the ids of events it applied, with a unique key, next to their effect. */
const LEDGER_MIGRATION = `
  CREATE TABLE applied_events (event_id uuid PRIMARY KEY, tenant_id uuid NOT NULL);
  CREATE TABLE totals (tenant_id uuid PRIMARY KEY, amount int NOT NULL);
  ALTER TABLE applied_events ENABLE ROW LEVEL SECURITY;
  ALTER TABLE totals ENABLE ROW LEVEL SECURITY;
  CREATE POLICY tenant_isolation ON applied_events
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
  CREATE POLICY tenant_isolation ON totals
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
`;

const silent = pino({ level: 'silent' });

const newEvent = (tenantId: string, payload: Record<string, unknown> = {}): BusEvent => ({
  id: randomUUID(),
  type: 'usage.recorded',
  tenantId,
  occurredAt: new Date().toISOString(),
  payload,
});

/** A database whose owner transactions fail when they mark rows published: a relay dying right after publishing. */
function crashingBeforeMarking(db: Database): Database {
  return {
    ...db,
    withSystem: (work) =>
      db.withSystem((tx) =>
        work({
          ...tx,
          query: (sql, params) =>
            sql.trimStart().startsWith('UPDATE') ? Promise.reject(new Error('crashed before marking')) : tx.query(sql, params),
        }),
      ),
  };
}

for (const variant of databaseVariants()) {
  describe(`outbox on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database;
    let bus: Bus;
    const tenantA = randomUUID();
    const tenantB = randomUUID();

    before(async () => {
      db = await openTestDatabase(variant, 'outboxed');
      const dir = mkdtempSync(join(tmpdir(), 'jarvis-outbox-'));
      writeFileSync(join(dir, '0001_ledger.sql'), LEDGER_MIGRATION);
      await db.migrate(dir);
      bus = await openBus({});
    });
    after(async () => {
      await bus?.close();
      await db?.close();
    });

    function relay(t: TestContext, options: Partial<OutboxRelayOptions> = {}) {
      const started = startOutboxRelay({ db, bus, log: silent, pollMs: 20, ...options });
      t.after(() => started.stop());
      return started;
    }

    async function collect(topic: string): Promise<BusEvent[]> {
      const seen: BusEvent[] = [];
      await bus.subscribe(topic, 'collector', async (event) => void seen.push(event));
      return seen;
    }

    const publishedAt = async (id: string) => {
      const rows = await db.withSystem((tx) => tx.query<{ published_at: Date | null }>(`SELECT published_at FROM outbox WHERE id = $1`, [id]));
      return rows[0]?.published_at;
    };

    test('an event of a rolled-back transaction is never published; a committed one is, once', async (t) => {
      const seen = await collect('orders.placed');
      const kept = newEvent(tenantA);
      const rolledBack = newEvent(tenantA);
      await db.withTenant(tenantA, (tx) => writeEvent(tx, 'orders.placed', kept));
      await assert.rejects(
        db.withTenant(tenantA, async (tx) => {
          await writeEvent(tx, 'orders.placed', rolledBack);
          throw new Error('the order failed');
        }),
        /the order failed/,
      );

      relay(t);
      await waitFor(() => seen.length > 0, 'the committed event');
      await sleep(150);

      assert.deepEqual(seen, [kept]);
      assert.ok((await publishedAt(kept.id)) instanceof Date, 'marked published');
      assert.equal(await publishedAt(rolledBack.id), undefined, 'never written');
    });

    test('two relays running at once publish each event once', async (t) => {
      const seen = await collect('jobs.done');
      const events = Array.from({ length: 60 }, () => newEvent(tenantA));
      for (let i = 0; i < events.length; i += 10) {
        await db.withTenant(tenantA, async (tx) => {
          for (const event of events.slice(i, i + 10)) await writeEvent(tx, 'jobs.done', event);
        });
      }
      const publishedBy = [0, 0];
      const slowBus = (relayIndex: number): Bus => ({
        ...bus,
        async publish(topic, event) {
          await sleep(5);
          publishedBy[relayIndex]!++;
          await bus.publish(topic, event);
        },
      });
      relay(t, { bus: slowBus(0), batchSize: 5 });
      relay(t, { bus: slowBus(1), batchSize: 5 });
      await waitFor(() => seen.length >= events.length, 'every event');
      await sleep(150);

      assert.equal(seen.length, events.length, `each once (relays published ${publishedBy.join(' and ')})`);
      assert.deepEqual(new Set(seen.map((e) => e.id)), new Set(events.map((e) => e.id)));
    });

    test('a relay that dies between publishing and marking publishes again; an idempotent consumer applies it once', async (t) => {
      const deliveries: string[] = [];
      await bus.subscribe('usage.recorded', 'billing', async (event) => {
        deliveries.push(event.id);
        await applyOnce(db, event);
      });
      const event = newEvent(tenantB, { amount: 7 });
      await db.withTenant(tenantB, (tx) => writeEvent(tx, 'usage.recorded', event));

      const dying = relay(t, { db: crashingBeforeMarking(db) });
      await waitFor(() => deliveries.length >= 1, 'the first publication');
      await dying.stop();
      assert.equal(await publishedAt(event.id), null, 'not marked');

      const healthy = relay(t);
      await waitFor(() => deliveries.length >= 2, 'the publication again');
      await healthy.stop();
      await sleep(50);

      assert.ok(deliveries.every((id) => id === event.id));
      assert.ok((await publishedAt(event.id)) instanceof Date);
      const totals = await db.withTenant(tenantB, (tx) => tx.query<{ amount: number }>(`SELECT amount FROM totals`));
      assert.deepEqual(totals, [{ amount: 7 }], `applied once of ${deliveries.length} deliveries`);
    });

    test('notify relays at once instead of at the next poll', async (t) => {
      const seen = await collect('chats.started');
      const started = relay(t, { pollMs: 60_000 });
      await sleep(50);
      const event = newEvent(tenantA);
      await db.withTenant(tenantA, (tx) => writeEvent(tx, 'chats.started', event));
      started.notify();
      await waitFor(() => seen.length === 1, 'the notified relay', { timeoutMs: 1_000 });
    });

    test("a DEDICATED tenant's events, written in its own schema, are published too", async (t) => {
      const seen = await collect('documents.ingested');
      const tenantC = randomUUID();
      const event = newEvent(tenantC);
      await db.withDedicatedTenant(tenantC, (tx) => writeEvent(tx, 'documents.ingested', event));
      relay(t);
      await waitFor(() => seen.length === 1, "the dedicated tenant's event");
      assert.deepEqual(seen, [event]);
    });

    test('published rows are deleted once older than keepPublishedMs', async (t) => {
      const seen = await collect('files.deleted');
      const event = newEvent(tenantA);
      await db.withTenant(tenantA, (tx) => writeEvent(tx, 'files.deleted', event));
      relay(t, { keepPublishedMs: 0 });
      await waitFor(() => seen.length === 1, 'the event');
      await waitFor(async () => (await publishedAt(event.id)) === undefined, 'the published row to be deleted', { timeoutMs: 2_000, intervalMs: 20 });
      assert.equal(await publishedAt(event.id), undefined);
    });

    test('the application role may only add its own tenant’s events: it cannot read, change or forge them', async () => {
      await db.withTenant(tenantA, (tx) => writeEvent(tx, 'orders.placed', newEvent(tenantA)));
      for (const sql of [`SELECT * FROM outbox`, `UPDATE outbox SET published_at = now()`, `DELETE FROM outbox`]) {
        await assert.rejects(db.withTenant(tenantA, (tx) => tx.query(sql)), /permission denied/, sql);
      }
      await assert.rejects(db.withTenant(tenantA, (tx) => writeEvent(tx, 'orders.placed', newEvent(tenantB))), /row-level security/);
      await assert.rejects(db.withoutTenant((tx) => writeEvent(tx, 'orders.placed', newEvent(tenantB))), /row-level security/);
    });

    test('an event id must be a UUID: it is the outbox key and the idempotency key', async () => {
      await assert.rejects(
        db.withTenant(tenantA, (tx) => writeEvent(tx, 'orders.placed', { ...newEvent(tenantA), id: 'order-1' })),
        /must be a UUID/,
      );
    });
  });
}

/** The idempotent consumer: the event id's unique key and the effect commit together, so a repeat changes nothing. */
async function applyOnce(db: Database, event: BusEvent): Promise<void> {
  await db.withTenant(event.tenantId, async (tx) => {
    const fresh = await tx.query(`INSERT INTO applied_events VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING event_id`, [
      event.id,
      event.tenantId,
    ]);
    if (fresh.length === 0) return;
    await tx.query(
      `INSERT INTO totals VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET amount = totals.amount + excluded.amount`,
      [event.tenantId, event.payload.amount],
    );
  });
}
