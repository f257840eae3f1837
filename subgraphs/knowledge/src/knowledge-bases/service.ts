import { randomUUID } from 'node:crypto';
import {
  conflict,
  groupBy,
  isUniqueViolation,
  parseInput,
  requirePermission,
  tenantLoader,
  type Database,
  type Principal,
} from '@jarvis/platform';
import { z } from 'zod';
import * as store from './store.ts';
import type { KnowledgeBase } from './store.ts';

const createInput = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters'),
  description: z.string().trim().max(2000, 'at most 2000 characters').nullish(),
});

export class KnowledgeBaseService {
  private readonly byTenant;

  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
  ) {
    this.byTenant = tenantLoader(db, async (tx, tenantIds) =>
      groupBy(await store.knowledgeBasesOf(tx, tenantIds), (kb) => kb.tenantId),
    );
  }

  async knowledgeBasesOf(tenantId: string): Promise<KnowledgeBase[]> {
    requirePermission(this.principal, 'kb:read');
    return (await this.byTenant.load({ tenantId, id: tenantId })) ?? [];
  }

  async create(rawInput: unknown): Promise<KnowledgeBase> {
    const tenantId = requirePermission(this.principal, 'kb:write');
    const input = parseInput(createInput, rawInput);
    try {
      return await this.db.withTenant(tenantId, (tx) =>
        store.insertKnowledgeBase(tx, { id: randomUUID(), tenantId, ...input, description: input.description ?? null }),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a knowledge base named "${input.name}" exists`, 'name');
      throw error;
    }
  }
}
