import { defineSubgraph } from '@jarvis/platform';
import { resolvers, type TenancyContext } from './resolvers.ts';
import { TenancyService } from './tenants/service.ts';

export const tenancySubgraph = defineSubgraph<TenancyContext>({
  name: 'tenancy',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  context: (base) => ({ ...base, tenancy: new TenancyService(base.db) }),
});
