import { enterTenant, QUOTA_TOPIC, quotaChangedPayload, type EventSubscription } from '@jarvis/platform';
import * as store from './store.ts';

/** The usage subgraph decides quotas; knowledge keeps the storage limit it enforces when documents are added. */
export const storageLimitSubscription: EventSubscription = {
  topic: QUOTA_TOPIC,
  group: 'knowledge-quotas',
  handle: async (event, { db }) => {
    const { storageBytes, isolation } = quotaChangedPayload.parse(event.payload);
    await enterTenant(db, isolation)(event.tenantId, (tx) =>
      store.saveStorageLimit(tx, event.tenantId, storageBytes, new Date(event.occurredAt)),
    );
  },
};
