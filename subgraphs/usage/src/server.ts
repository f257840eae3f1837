import { defineSubgraph } from '@jarvis/platform/subgraph';
import type { UsageContext } from './context.ts';
import { resolvers } from './resolvers.ts';
import { ledgerSubscription } from './ledger/consumer.ts';
import { UsageService } from './ledger/service.ts';
import { QuotaService } from './quotas/service.ts';

export const usageSubgraph = defineSubgraph<UsageContext>({
  name: 'usage',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  context: (base, { outbox }) => ({
    ...base,
    usage: new UsageService(base.db, base.principal, outbox),
    quotas: new QuotaService(base.db, base.principal, outbox),
  }),
  subscriptions: [ledgerSubscription],
  outbox: true,
});
