import { defineSubgraph } from '@jarvis/platform';
import { resolvers, type TenancyContext } from './resolvers.ts';
import { TenancyService } from './tenants/service.ts';
import { SigningKeys } from './tokens/keys.ts';

export const tenancySubgraph = defineSubgraph<TenancyContext>({
  name: 'tenancy',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  context: (base) => ({ ...base, tenancy: new TenancyService(base.db) }),
  routes: (app, { db, config }) => {
    const keys = new SigningKeys(db, config.SIGNING_KEY_ROTATION_HOURS * 3_600_000, config.ACCESS_TOKEN_TTL_SECONDS * 1_000);
    app.get('/.well-known/jwks.json', async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return keys.jwks();
    });
  },
});
