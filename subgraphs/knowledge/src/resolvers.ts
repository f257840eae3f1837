import { DateTime, Upload, type BaseContext } from '@jarvis/platform';
import type { DocumentService } from './documents/service.ts';
import type { Document } from './documents/store.ts';
import type { KnowledgeBaseService, VisibleKnowledgeBase } from './knowledge-bases/service.ts';
import type { Grant } from './knowledge-bases/store.ts';
import type { Passage, SearchService } from './search/service.ts';

export interface KnowledgeContext extends BaseContext {
  knowledgeBases: KnowledgeBaseService;
  documents: DocumentService;
  searches: SearchService;
}

type Args = Record<string, unknown>;
const input = (args: Args) => args.input;

export const resolvers = {
  DateTime,
  Upload,
  Query: {
    knowledgeBase: (_: unknown, args: { id: string }, ctx: KnowledgeContext) => ctx.knowledgeBases.knowledgeBase(args.id),
    document: (_: unknown, args: { id: string }, ctx: KnowledgeContext) => ctx.documents.document(args.id),
    search: (_: unknown, args: Args, ctx: KnowledgeContext) => ctx.searches.search(args),
  },
  Mutation: {
    createKnowledgeBase: (_: unknown, args: Args, ctx: KnowledgeContext) => ctx.knowledgeBases.create(input(args)),
    updateKnowledgeBase: (_: unknown, args: Args, ctx: KnowledgeContext) => ctx.knowledgeBases.update(input(args)),
    deleteKnowledgeBase: (_: unknown, args: { id: string }, ctx: KnowledgeContext) => ctx.knowledgeBases.delete(args.id),
    grantKnowledgeBaseAccess: (_: unknown, args: Args, ctx: KnowledgeContext) => ctx.knowledgeBases.grant(input(args)),
    revokeKnowledgeBaseAccess: (_: unknown, args: Args, ctx: KnowledgeContext) => ctx.knowledgeBases.revoke(input(args)),
    addDocument: (_: unknown, args: Args, ctx: KnowledgeContext) => ctx.documents.add(input(args)),
    reingestDocument: (_: unknown, args: { id: string }, ctx: KnowledgeContext) => ctx.documents.reingest(args.id),
    deleteDocument: (_: unknown, args: { id: string }, ctx: KnowledgeContext) => ctx.documents.delete(args.id),
  },
  Subscription: {
    documentStatusChanged: {
      subscribe: (_: unknown, args: Args, ctx: KnowledgeContext) => ctx.documents.statusChanges(args),
      resolve: (doc: Document) => doc,
    },
  },
  KnowledgeBase: {
    __resolveReference: (ref: { id: string }, ctx: KnowledgeContext) => ctx.knowledgeBases.knowledgeBase(ref.id),
    tenant: (kb: VisibleKnowledgeBase) => ({ id: kb.tenantId }),
    owner: (kb: VisibleKnowledgeBase) => (kb.ownerId ? { id: kb.ownerId, tenant: { id: kb.tenantId } } : null),
    grants: (kb: VisibleKnowledgeBase, _: unknown, ctx: KnowledgeContext) => ctx.knowledgeBases.grantsOf(kb),
    documents: (kb: VisibleKnowledgeBase, args: Args, ctx: KnowledgeContext) => ctx.documents.documentsOf(kb, args),
  },
  KnowledgeBaseGrant: {
    user: (grant: Grant, _: unknown, ctx: KnowledgeContext) =>
      grant.reader.startsWith('user:') ? { id: grant.reader.slice(5), tenant: { id: ctx.principal.tenantId } } : null,
    groupId: (grant: Grant) => (grant.reader.startsWith('group:') ? grant.reader.slice(6) : null),
  },
  Document: {
    __resolveReference: (ref: { id: string }, ctx: KnowledgeContext) => ctx.documents.document(ref.id),
    knowledgeBase: (doc: Document, _: unknown, ctx: KnowledgeContext) => ctx.knowledgeBases.knowledgeBase(doc.knowledgeBaseId),
  },
  Passage: {
    text: (passage: Passage) => passage.content,
    document: (passage: Passage, _: unknown, ctx: KnowledgeContext) => ctx.documents.document(passage.documentId),
    knowledgeBase: (passage: Passage, _: unknown, ctx: KnowledgeContext) => ctx.knowledgeBases.knowledgeBase(passage.knowledgeBaseId),
  },
  Tenant: {
    knowledgeBases: (tenant: { id: string }, _: unknown, ctx: KnowledgeContext) => ctx.knowledgeBases.knowledgeBasesOf(tenant.id),
  },
};
