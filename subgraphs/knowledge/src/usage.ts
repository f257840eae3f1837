/**
 * The bytes of stored documents, reported to the usage ledger as STORAGE_BYTES events through the outbox, so
 * that the ledger's sum for a tenant is the bytes of its documents — what this service's storage quota check
 * counts (documents/store.ts storedBytes), once each document is ingested. A document's bytes are counted
 * when its first ingestion makes it READY and released (a negative event) when it is deleted. Each event's id
 * derives from the document, so a retried job or a redelivery counts once in the ledger.
 */
import { usageEvent, USAGE_TOPIC, type TenantIsolation } from '@jarvis/platform/contracts';
import type { Transaction } from '@jarvis/platform/db';
import { uuidOf } from '@jarvis/platform/ids';
import { writeEvents } from '@jarvis/platform/outbox';
import type { Document } from './documents/store.ts';

type Stored = Pick<Document, 'id' | 'tenantId' | 'contentHash' | 'byteSize' | 'createdBy' | 'status' | 'chunkCount'>;

/**
 * Whether the document's bytes were counted. Its first ingestion counts them in the transaction that makes it
 * READY and sets its chunk count, which nothing else sets and which is never 0 then (a document without text
 * is rejected): a document re-ingested, or failing a later attempt, still shows it.
 */
export const storageCounted = (doc: Stored): boolean => doc.status === 'READY' || doc.chunkCount > 0;

/** The id of the event counting the document's bytes; the same as before releases existed, so old counts match. */
export const storageEventId = (doc: Pick<Document, 'id' | 'contentHash'>): string => uuidOf(`storage:${doc.id}:${doc.contentHash}`);

/** The id of the event releasing them. */
export const storageReleaseEventId = (doc: Pick<Document, 'id' | 'contentHash'>): string => uuidOf(`storage-released:${doc.id}:${doc.contentHash}`);

/**
 * In the transaction that makes the document READY, with the document as it was before: counts its bytes as
 * stored unless an earlier ingestion did (re-ingesting stores nothing more). True when it wrote the event.
 */
export function storageStored(tx: Transaction, doc: Stored, isolation: TenantIsolation): Promise<boolean> {
  return storageChanged(tx, [doc].filter((d) => !storageCounted(d)), 1, isolation);
}

/**
 * In the transaction that deleted the documents, with the rows the delete returned: releases the bytes of
 * those that were counted (a document deleted before it was ever READY was not). The member who added one is
 * the one whose usage goes down, as it went up. True when it wrote events; the caller then wakes the relay.
 */
export function storageReleased(tx: Transaction, docs: readonly Stored[], isolation: TenantIsolation): Promise<boolean> {
  return storageChanged(tx, docs.filter(storageCounted), -1, isolation);
}

async function storageChanged(tx: Transaction, docs: readonly Stored[], sign: 1 | -1, isolation: TenantIsolation): Promise<boolean> {
  const idOf = sign > 0 ? storageEventId : storageReleaseEventId;
  const events = docs.map((doc) =>
    usageEvent(doc.tenantId, { metric: 'STORAGE_BYTES', quantity: sign * doc.byteSize, userId: doc.createdBy, isolation }, idOf(doc)),
  );
  await writeEvents(tx, USAGE_TOPIC, events);
  return events.length > 0;
}
