import type { BusEvent } from '@jarvis/platform/bus';
import { USAGE_TOPIC, usagePayload } from '@jarvis/platform/contracts';
import { enterTenant, type Database } from '@jarvis/platform/db';
import type { EventSubscription } from '@jarvis/platform/subgraph';
import * as store from './store.ts';

/**
 * Usage events from every service, into the ledger. Delivery is at least once: the event id is the
 * idempotency key, so a redelivered or duplicated event counts once. An event that does not parse is
 * refused and, after the bus's retries, dead-lettered rather than dropped.
 */
export const ledgerSubscription: EventSubscription = {
  topic: USAGE_TOPIC,
  group: 'usage-ledger',
  handle: (event, { db }) => recordEvent(db, event),
};

async function recordEvent(db: Database, event: BusEvent): Promise<void> {
  const { metric, quantity, model, userId, isolation } = usagePayload.parse(event.payload);
  await enterTenant(db, isolation)(event.tenantId, (tx) =>
    store.recordEventOnce(tx, {
      id: event.id,
      tenantId: event.tenantId,
      metric,
      quantity,
      idempotencyKey: `event:${event.id}`,
      occurredAt: new Date(event.occurredAt),
      model: model ?? null,
      userId: userId ?? null,
    }),
  );
}
