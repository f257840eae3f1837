import { defineSubgraph } from '@jarvis/platform/subgraph';
import { AccessService, Credentials } from './access/service.ts';
import { ExternalIssuers, IssuerService, openIssuerResources, type IssuerResources } from './issuers/service.ts';
import type { TenancyContext } from './context.ts';
import { resolvers } from './resolvers.ts';
import { TenancyService } from './tenants/service.ts';
import { registerIssuer } from './tokens/issuer.ts';

export const tenancySubgraph = defineSubgraph<TenancyContext, IssuerResources>({
  name: 'tenancy',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  tenantDirectory: true,
  resources: openIssuerResources,
  context: (base, { unscoped, resources }) => ({
    ...base,
    tenancy: new TenancyService(base.db, unscoped),
    access: new AccessService(base.db, base.principal),
    credentials: new Credentials(unscoped),
    issuers: new IssuerService(base.db, base.principal, resources.jwks),
  }),
  routes: (app, { db, config, log, resources }) => registerIssuer(app, db, config, new ExternalIssuers(db, { guard: resources.jwks, log })),
});
