import { defineSubgraph } from '@jarvis/platform/subgraph';
import type { AgentsContext } from './context.ts';
import { DefinitionService } from './definitions/service.ts';
import { LabelService } from './labels/service.ts';
import { resolvers } from './resolvers.ts';

export const agentsSubgraph = defineSubgraph<AgentsContext>({
  name: 'agents',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  context: (base, { outbox }) => {
    const definitions = new DefinitionService(base.db, base.principal);
    return { ...base, definitions, labels: new LabelService(base.db, base.principal, outbox, definitions) };
  },
  outbox: true,
});
