import { defineSubgraph } from '@jarvis/platform';
import { resolvers, type ChatContext } from './resolvers.ts';
import { ConversationService } from './conversations/service.ts';

export const chatSubgraph = defineSubgraph<ChatContext>({
  name: 'chat',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  context: (base) => ({ ...base, conversations: new ConversationService(base.db, base.principal) }),
});
