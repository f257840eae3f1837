import { randomUUID } from 'node:crypto';
import { parseInput, requirePermission, type Database, type Principal } from '@jarvis/platform';
import { z } from 'zod';
import * as store from './store.ts';
import type { Conversation } from './store.ts';

const createInput = z.object({
  title: z.string().trim().max(200, 'at most 200 characters').nullish(),
});

const page = z.object({ first: z.number().int().min(1, 'must be at least 1').max(100, 'at most 100') });

export class ConversationService {
  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
  ) {}

  latest(tenantId: string, first: number): Promise<Conversation[]> {
    requirePermission(this.principal, 'chat:use');
    const { first: limit } = parseInput(page, { first });
    return this.db.withTenant(tenantId, (tx) => store.latestConversations(tx, limit));
  }

  create(rawInput: unknown): Promise<Conversation> {
    const tenantId = requirePermission(this.principal, 'chat:use');
    const input = parseInput(createInput, rawInput);
    return this.db.withTenant(tenantId, (tx) =>
      store.insertConversation(tx, {
        id: randomUUID(),
        tenantId,
        title: input.title || 'New conversation',
        // the member who starts it; none when a service account does
        createdById: this.principal.userId ?? null,
      }),
    );
  }
}
