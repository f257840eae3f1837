import { DateTime, type BaseContext } from '@jarvis/platform';
import type { KnowledgeBaseService } from './knowledge-bases/service.ts';
import type { KnowledgeBase } from './knowledge-bases/store.ts';

export interface KnowledgeContext extends BaseContext {
  knowledgeBases: KnowledgeBaseService;
}

export const resolvers = {
  DateTime,
  Mutation: {
    createKnowledgeBase: (_: unknown, args: { input: unknown }, ctx: KnowledgeContext) =>
      ctx.knowledgeBases.create(args.input),
  },
  KnowledgeBase: {
    tenant: (kb: KnowledgeBase) => ({ id: kb.tenantId }),
  },
  Tenant: {
    knowledgeBases: (tenant: { id: string }, _: unknown, ctx: KnowledgeContext) =>
      ctx.knowledgeBases.knowledgeBasesOf(tenant.id),
  },
};
