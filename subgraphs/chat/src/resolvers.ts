import { DateTime } from '@jarvis/platform/subgraph';
import type { AnswerEvent } from './answers/events-store.ts';
import type { Resolvers } from './generated/schema-types.ts';

export const resolvers: Resolvers = {
  DateTime,
  Query: {
    conversation: (_, { id }, ctx) => ctx.conversations.conversation(id),
  },
  Mutation: {
    createConversation: (_, { input }, ctx) => ctx.conversations.create(input),
    ask: (_, { input }, ctx) => ctx.answers.ask(input),
    complete: (_, { input }, ctx) => ctx.completions.complete(input),
  },
  Subscription: {
    answerStream: {
      subscribe: (_, args, ctx) => ctx.answers.stream(args),
      resolve: (event: AnswerEvent) => event,
    },
  },
  Conversation: {
    tenant: (conversation) => ({ id: conversation.tenantId }),
    createdBy: (conversation) =>
      conversation.createdById ? { id: conversation.createdById, tenant: { id: conversation.tenantId } } : null,
    messages: (conversation, { last }, ctx) => ctx.conversations.messagesOf(conversation, last),
  },
  Message: {
    conversation: (message, _, ctx) => ctx.conversations.requireConversation(message.conversationId),
    author: (message) => (message.authorId ? { id: message.authorId, tenant: { id: message.tenantId } } : null),
  },
  AnswerEvent: {
    message: (event, _, ctx) => ctx.conversations.requireMessage(event.messageId),
  },
  Citation: {
    document: (citation) => ({ id: citation.documentId }),
    knowledgeBase: (citation) => ({ id: citation.knowledgeBaseId }),
  },
  Tenant: {
    conversations: (tenant, { first }, ctx) => ctx.conversations.latest(tenant.id, first),
  },
};
