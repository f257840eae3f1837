import { randomUUID } from 'node:crypto';
import { parseInput, type Database } from '@jarvis/platform';
import { z } from 'zod';
import * as store from './store.ts';
import type { Conversation } from './store.ts';

const createInput = z.object({
  tenantId: z.uuid('must be a tenant id'),
  title: z.string().trim().max(200, 'at most 200 characters').nullish(),
  createdById: z.uuid('must be a user id').nullish(),
});

const page = z.object({ first: z.number().int().min(1, 'must be at least 1').max(100, 'at most 100') });

export class ConversationService {
  constructor(private readonly db: Database) {}

  latest(tenantId: string, first: number): Promise<Conversation[]> {
    const { first: limit } = parseInput(page, { first });
    return this.db.withTenant(tenantId, (tx) => store.latestConversations(tx, limit));
  }

  create(rawInput: unknown): Promise<Conversation> {
    const input = parseInput(createInput, rawInput);
    return this.db.withTenant(input.tenantId, (tx) =>
      store.insertConversation(tx, {
        id: randomUUID(),
        tenantId: input.tenantId,
        title: input.title || 'New conversation',
        createdById: input.createdById ?? null,
      }),
    );
  }
}
