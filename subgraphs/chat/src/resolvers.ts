import { DateTime, type BaseContext } from '@jarvis/platform';
import type { ConversationService } from './conversations/service.ts';
import type { Conversation } from './conversations/store.ts';

export interface ChatContext extends BaseContext {
  conversations: ConversationService;
}

export const resolvers = {
  DateTime,
  Mutation: {
    createConversation: (_: unknown, args: { input: unknown }, ctx: ChatContext) => ctx.conversations.create(args.input),
  },
  Conversation: {
    tenant: (conversation: Conversation) => ({ id: conversation.tenantId }),
    createdBy: (conversation: Conversation) =>
      conversation.createdById ? { id: conversation.createdById, tenant: { id: conversation.tenantId } } : null,
  },
  Tenant: {
    conversations: (tenant: { id: string }, args: { first: number }, ctx: ChatContext) =>
      ctx.conversations.latest(tenant.id, args.first),
  },
};
