import { DateTime, type BaseContext } from '@jarvis/platform';
import type { AnswerEvent } from './answers/events-store.ts';
import type { AnswerService } from './answers/service.ts';
import type { ConversationService } from './conversations/service.ts';
import type { Conversation } from './conversations/store.ts';
import type { Message, StoredCitation } from './messages/store.ts';

export interface ChatContext extends BaseContext {
  conversations: ConversationService;
  answers: AnswerService;
}

type Args = Record<string, unknown>;

export const resolvers = {
  DateTime,
  Query: {
    conversation: (_: unknown, args: { id: string }, ctx: ChatContext) => ctx.conversations.conversation(args.id),
  },
  Mutation: {
    createConversation: (_: unknown, args: { input: unknown }, ctx: ChatContext) => ctx.conversations.create(args.input),
    ask: (_: unknown, args: { input: unknown }, ctx: ChatContext) => ctx.answers.ask(args.input),
  },
  Subscription: {
    answerStream: {
      subscribe: (_: unknown, args: Args, ctx: ChatContext) => ctx.answers.stream(args),
      resolve: (event: AnswerEvent) => event,
    },
  },
  Conversation: {
    tenant: (conversation: Conversation) => ({ id: conversation.tenantId }),
    createdBy: (conversation: Conversation) =>
      conversation.createdById ? { id: conversation.createdById, tenant: { id: conversation.tenantId } } : null,
    messages: (conversation: Conversation, args: { last: number }, ctx: ChatContext) => ctx.conversations.messagesOf(conversation, args.last),
  },
  Message: {
    conversation: (message: Message, _: unknown, ctx: ChatContext) => ctx.conversations.conversation(message.conversationId),
    author: (message: Message) => (message.authorId ? { id: message.authorId, tenant: { id: message.tenantId } } : null),
  },
  AnswerEvent: {
    message: (event: AnswerEvent, _: unknown, ctx: ChatContext) => ctx.conversations.message(event.messageId),
  },
  Citation: {
    passageId: (citation: StoredCitation) => citation.passageId,
    document: (citation: StoredCitation) => ({ id: citation.documentId }),
    knowledgeBase: (citation: StoredCitation) => ({ id: citation.knowledgeBaseId }),
  },
  Tenant: {
    conversations: (tenant: { id: string }, args: { first: number }, ctx: ChatContext) => ctx.conversations.latest(tenant.id, args.first),
  },
};
