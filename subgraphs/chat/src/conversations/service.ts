/**
 * Conversations and their messages, each the business of the member who started it (a service account's
 * conversations are those of service accounts), within the caller's tenant.
 */
import { randomUUID } from 'node:crypto';
import { isUuid, notFound, parseInput, requirePermission, type Database, type Principal } from '@jarvis/platform';
import { z } from 'zod';
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
    requirePermission(this.principal, 'chat:use');
    const limit = parseInput(z.object({ first: page }), { first }).first;
    return this.db.withTenant(tenantId, (tx) => store.latestConversations(tx, this.owner, limit));
  }

  /** The caller's conversation; null when there is none. */
  async conversation(id: string): Promise<Conversation | null> {
    const tenantId = requirePermission(this.principal, 'chat:use');
    if (!isUuid(id)) return null;
    return (await this.db.withTenant(tenantId, (tx) => store.conversationOf(tx, id, this.owner))) ?? null;
  }

  /** The caller's conversation, or NOT_FOUND. */
  async requireConversation(id: string): Promise<Conversation> {
    const conversation = await this.conversation(id);
    if (!conversation) throw notFound(`no conversation ${id}`);
    return conversation;
  }

  create(rawInput: unknown): Promise<Conversation> {
    const input = parseInput(createInput, rawInput);
    return this.start(input.title || 'New conversation');
  }

  start(conversationTitle: string): Promise<Conversation> {
    const tenantId = requirePermission(this.principal, 'chat:use');
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
    const tenantId = requirePermission(this.principal, 'chat:use');
    if (!isUuid(id)) return null;
    const [message] = await this.db.withTenant(tenantId, (tx) => messages.messagesByIds(tx, [id]));
    if (!message || !(await this.conversation(message.conversationId))) return null;
    return message;
  }

  /** Conversations belong to the member who started them; a service account's to no member. */
  private get owner(): string | null {
    return this.principal.userId ?? null;
  }
}
