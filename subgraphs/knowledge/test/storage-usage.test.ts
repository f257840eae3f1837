/**
 * The bytes of stored documents as STORAGE_BYTES usage events in the outbox: counted once when a document is
 * first READY (not again when it is re-ingested), released once when it is deleted after that, and neither for a
 * document that never became READY; so the events of a tenant sum to the bytes of its ingested documents.
 * Documents go through the real worker (`ingest`), the store's delete and `storageReleased`, as the document
 * service's delete calls them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { USAGE_TOPIC, type TenantIsolation } from '@jarvis/platform/contracts';
import { dedicatedSchemaName, enterTenant, type Database } from '@jarvis/platform/db';
import { createLogger } from '@jarvis/platform/logger';
import { createServiceMetrics } from '@jarvis/platform/metrics';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { LocalHashEmbedder } from '@jarvis/platform/text';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';
import * as documents from '../src/documents/store.ts';
import type { Document } from '../src/documents/store.ts';
import { ingestionMetrics } from '../src/ingestion/metrics.ts';
import { ingest, INGEST_TOPIC, type IngestionServices } from '../src/ingestion/worker.ts';
import * as knowledgeBases from '../src/knowledge-bases/store.ts';
import { storageEventId, storageReleased, storageReleaseEventId } from '../src/usage.ts';
import { openVectorStore, type VectorStore } from '../src/vectors/index.ts';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));

interface StorageEvent {
  id: string;
  quantity: number;
  userId: string | null;
  isolation: TenantIsolation;
}

for (const variant of databaseVariants()) {
  describe(`storage usage of documents, on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database & { close(): Promise<void> };
    let vectors: VectorStore;
    const embedder = new LocalHashEmbedder(32);

    before(async () => {
      db = await openTestDatabase(variant, 'knowledge');
      await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
      vectors = await openVectorStore({ db });
      await vectors.ensureCollection(embedder.dimensions);
    });
    after(async () => {
      await vectors?.close();
      await db?.close();
    });

    const services: () => IngestionServices = () => ({
      db,
      vectors,
      embedder,
      log: createLogger('ingestion', 'silent'),
      outbox: { notify() {} },
      staleJobMs: 60_000,
      metrics: ingestionMetrics(createServiceMetrics('knowledge'), db),
    });

    async function addDocument(tenantId: string, isolation: TenantIsolation, text: string, createdBy: string | null = null): Promise<Document> {
      return enterTenant(db, isolation)(tenantId, async (tx) => {
        const kb = await knowledgeBases.insertKnowledgeBase(tx, { id: randomUUID(), tenantId, name: `KB ${randomUUID()}`, description: null, ownerId: null, memberAccess: 'READ' });
        return (await documents.insertDocument(tx, {
          id: randomUUID(),
          tenantId,
          knowledgeBaseId: kb.id,
          title: 'Handbook',
          mediaType: 'text/markdown',
          content: Buffer.from(text),
          contentHash: randomUUID(),
          readers: [],
          createdBy,
        }))!;
      });
    }

    async function runJob(doc: Document, isolation: TenantIsolation): Promise<Document> {
      await ingest({ id: randomUUID(), type: INGEST_TOPIC, tenantId: doc.tenantId, occurredAt: new Date().toISOString(), payload: { documentId: doc.id, isolation } }, services());
      const [now] = await enterTenant(db, isolation)(doc.tenantId, (tx) => documents.documentsByIds(tx, [doc.id]));
      return now!;
    }

    /** What the document service's reingest does to the row, then the job it queues. */
    async function reingest(doc: Document, isolation: TenantIsolation): Promise<Document> {
      await enterTenant(db, isolation)(doc.tenantId, (tx) => documents.setStatus(tx, doc.id, 'PENDING', { attempts: 'reset' }));
      return runJob(doc, isolation);
    }

    /** What the document service's delete does in its transaction; whether a release was written. */
    const remove = (doc: Document, isolation: TenantIsolation) =>
      enterTenant(db, isolation)(doc.tenantId, async (tx) => {
        const deleted = await documents.deleteDocument(tx, doc.id);
        return storageReleased(tx, deleted ? [deleted] : [], isolation);
      });

    const storageEvents = (tenantId: string, schema = db.schema) =>
      db.withSystem(async (tx) => {
        const rows = await tx.query<{ id: string; event: { payload: StorageEvent } }>(
          `SELECT id, event FROM ${schema}.outbox WHERE tenant_id = $1 AND topic = $2 ORDER BY created_at`,
          [tenantId, USAGE_TOPIC],
        );
        return rows.map(({ id, event }) => ({ id, quantity: event.payload.quantity, userId: event.payload.userId ?? null, isolation: event.payload.isolation }));
      });
    const sum = (events: StorageEvent[]) => events.reduce((total, event) => total + event.quantity, 0);

    test('counted once when first READY, not again when re-ingested, released once when deleted', async () => {
      const tenantId = randomUUID();
      const member = randomUUID();
      const doc = await addDocument(tenantId, 'SHARED', '# Handbook\n\nEveryone gets 25 days of paid leave a year.\n', member);
      const kept = await addDocument(tenantId, 'SHARED', '# Expenses\n\nSubmit receipts within 30 days.\n');

      assert.equal((await runJob(doc, 'SHARED')).status, 'READY');
      assert.equal((await runJob(kept, 'SHARED')).status, 'READY');
      const counted = { id: storageEventId(doc), quantity: doc.byteSize, userId: member, isolation: 'SHARED' };
      assert.deepEqual((await storageEvents(tenantId))[0], counted);

      const again = await reingest(doc, 'SHARED');
      assert.deepEqual([again.status, again.failureReason], ['READY', null], 're-ingesting succeeds');
      assert.equal((await storageEvents(tenantId)).length, 2, 'and counts nothing more');

      assert.equal(await remove(doc, 'SHARED'), true);
      assert.equal(await remove(doc, 'SHARED'), false, 'a document deleted twice is released once');
      const events = await storageEvents(tenantId);
      assert.deepEqual(events.at(-1), { id: storageReleaseEventId(doc), quantity: -doc.byteSize, userId: member, isolation: 'SHARED' });
      assert.notEqual(storageReleaseEventId(doc), storageEventId(doc));
      assert.equal(storageReleaseEventId({ ...doc }), storageReleaseEventId(doc), 'the same document, the same release id');
      assert.equal(sum(events), kept.byteSize, 'the events sum to the bytes of the documents still stored');
    });

    test('a document deleted before it was ever READY releases nothing; one deleted while being re-ingested does', async () => {
      const tenantId = randomUUID();
      const pending = await addDocument(tenantId, 'SHARED', '# Pending\n\nNot ingested yet.\n');
      const rejected = await addDocument(tenantId, 'SHARED', '   \n\n  ');
      assert.equal((await runJob(rejected, 'SHARED')).status, 'FAILED');
      const requeued = await addDocument(tenantId, 'SHARED', '# Requeued\n\nIngested, then queued again.\n');
      assert.equal((await runJob(requeued, 'SHARED')).status, 'READY');
      await enterTenant(db, 'SHARED')(tenantId, (tx) => documents.setStatus(tx, requeued.id, 'PENDING', { attempts: 'reset' }));

      assert.equal(await remove(pending, 'SHARED'), false);
      assert.equal(await remove(rejected, 'SHARED'), false);
      assert.equal(await remove(requeued, 'SHARED'), true);
      // The job of the deleted document finds nothing to do, and counts nothing.
      await ingest({ id: randomUUID(), type: INGEST_TOPIC, tenantId, occurredAt: new Date().toISOString(), payload: { documentId: requeued.id, isolation: 'SHARED' } }, services());
      const events = await storageEvents(tenantId);
      assert.deepEqual(events.map((event) => event.quantity), [requeued.byteSize, -requeued.byteSize]);
      assert.equal(sum(events), 0);
    });

    test("a DEDICATED tenant's events are in its own schema's outbox, marked DEDICATED", async () => {
      const tenantId = randomUUID();
      const doc = await addDocument(tenantId, 'DEDICATED', '# Own\n\nKept in its own schema.\n');
      assert.equal((await runJob(doc, 'DEDICATED')).status, 'READY');
      assert.equal(await remove(doc, 'DEDICATED'), true);
      const own = await storageEvents(tenantId, dedicatedSchemaName(db.schema, tenantId));
      assert.deepEqual(own.map((event) => [event.quantity, event.isolation]), [[doc.byteSize, 'DEDICATED'], [-doc.byteSize, 'DEDICATED']]);
      assert.deepEqual(await storageEvents(tenantId), [], 'nothing in the shared outbox');
    });
  });
}
