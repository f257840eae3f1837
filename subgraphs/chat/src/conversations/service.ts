/**
 * Conversations and their messages, each the business of the member who started it (a service account's
 * conversations are those of service accounts), within the caller's tenant.
 */
import { randomUUID } from 'node:crypto';
import { requireTenant, type Principal } from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { notFound } from '@jarvis/platform/errors';
import { isUuid } from '@jarvis/platform/ids';
import { parseInput } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { CreateConversationInput } from '../generated/schema-types.ts';
import * as messages from '../messages/store.ts';
import type { Message } from '../messages/store.ts';
import * as store from './store.ts';
import type { Conversation } from './store.ts';

const title = z.string().trim().max(200, 'at most 200 characters');
const createInput = z.object({ title: title.nullish() });
const page = z.number().int().min(1, 'must be at least 1').max(100, 'at most 100');

export class ConversationService {
  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
  ) {}

  latest(tenantId: string, first: number): Promise<Conversation[]> {
    const limit = parseInput(z.object({ first: page }), { first }).first;
    return this.db.withTenant(tenantId, (tx) => store.latestConversations(tx, this.owner, limit));
  }

  /** The caller's conversation; null when there is none. */
  async conversation(id: string): Promise<Conversation | null> {
    const tenantId = requireTenant(this.principal);
    if (!isUuid(id)) return null;
    return (await this.db.withTenant(tenantId, (tx) => store.conversationOf(tx, id, this.owner))) ?? null;
  }

  /** The caller's conversation, or NOT_FOUND. */
  async requireConversation(id: string): Promise<Conversation> {
    const conversation = await this.conversation(id);
    if (!conversation) throw notFound(`no conversation ${id}`);
    return conversation;
  }

  create(input: CreateConversationInput): Promise<Conversation> {
    const { title } = parseInput(createInput, input);
    return this.start(title || 'New conversation');
  }

  start(conversationTitle: string): Promise<Conversation> {
    const tenantId = requireTenant(this.principal);
    return this.db.withTenant(tenantId, (tx) =>
      store.insertConversation(tx, { id: randomUUID(), tenantId, title: conversationTitle.slice(0, 200), createdById: this.owner }),
    );
  }

  messagesOf(conversation: Conversation, last: number): Promise<Message[]> {
    const limit = parseInput(z.object({ last: page }), { last }).last;
    return this.db.withTenant(conversation.tenantId, (tx) => messages.messagesOf(tx, conversation.id, limit));
  }

  /** A message of one of the caller's conversations, read now (not cached: streams ask again per event). */
  async message(id: string): Promise<Message | null> {
    const tenantId = requireTenant(this.principal);
    if (!isUuid(id)) return null;
    const [message] = await this.db.withTenant(tenantId, (tx) => messages.messagesByIds(tx, [id]));
    if (!message || !(await this.conversation(message.conversationId))) return null;
    return message;
  }

  /** A message of one of the caller's conversations, or NOT_FOUND. */
  async requireMessage(id: string): Promise<Message> {
    const message = await this.message(id);
    if (!message) throw notFound(`no message ${id}`);
    return message;
  }

  /** Conversations belong to the member who started them; a service account's to no member. */
  private get owner(): string | null {
    return this.principal.userId ?? null;
  }
}
