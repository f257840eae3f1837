import { defineSubgraph } from '@jarvis/platform';
import { resolvers, type TenancyContext } from './resolvers.ts';
import { TenancyService } from './tenants/service.ts';
import { registerIssuer } from './tokens/issuer.ts';

export const tenancySubgraph = defineSubgraph<TenancyContext>({
  name: 'tenancy',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  context: (base) => ({ ...base, tenancy: new TenancyService(base.db) }),
  routes: (app, { db, config }) => registerIssuer(app, db, config),
});
