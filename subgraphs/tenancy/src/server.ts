import { defineSubgraph } from '@jarvis/platform';
import { AccessService, Credentials } from './access/service.ts';
import { IssuerService } from './issuers/service.ts';
import { resolvers, type TenancyContext } from './resolvers.ts';
import { TenancyService } from './tenants/service.ts';
import { registerIssuer } from './tokens/issuer.ts';

export const tenancySubgraph = defineSubgraph<TenancyContext>({
  name: 'tenancy',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  tenantDirectory: true,
  context: (base, { unscoped, config }) => ({
    ...base,
    tenancy: new TenancyService(base.db, unscoped),
    access: new AccessService(base.db, base.principal),
    credentials: new Credentials(unscoped),
    issuers: new IssuerService(base.db, base.principal, config.TRUSTED_ISSUER_ALLOW_HTTP),
  }),
  routes: (app, { db, config }) => registerIssuer(app, db, config),
});
