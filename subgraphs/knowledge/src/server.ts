import { defineSubgraph } from '@jarvis/platform';
import { resolvers, type KnowledgeContext } from './resolvers.ts';
import { KnowledgeBaseService } from './knowledge-bases/service.ts';

export const knowledgeSubgraph = defineSubgraph<KnowledgeContext>({
  name: 'knowledge',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  context: (base) => ({ ...base, knowledgeBases: new KnowledgeBaseService(base.db, base.principal) }),
});
