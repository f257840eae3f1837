import { DateTime, Upload } from '@jarvis/platform/subgraph';
import { requireTenant } from '@jarvis/platform/contracts';
import type { Document } from './documents/store.ts';
import type { Resolvers } from './generated/schema-types.ts';

export const resolvers: Resolvers = {
  DateTime,
  Upload,
  Query: {
    knowledgeBase: (_, { id }, ctx) => ctx.knowledgeBases.knowledgeBase(id),
    document: (_, { id }, ctx) => ctx.documents.document(id),
    search: (_, args, ctx) => ctx.searches.search(args),
  },
  Mutation: {
    createKnowledgeBase: (_, { input }, ctx) => ctx.knowledgeBases.create(input),
    updateKnowledgeBase: (_, { input }, ctx) => ctx.knowledgeBases.update(input),
    deleteKnowledgeBase: (_, { id }, ctx) => ctx.knowledgeBases.delete(id),
    grantKnowledgeBaseAccess: (_, { input }, ctx) => ctx.knowledgeBases.grant(input),
    revokeKnowledgeBaseAccess: (_, { input }, ctx) => ctx.knowledgeBases.revoke(input),
    addDocument: (_, { input }, ctx) => ctx.documents.add(input),
    reingestDocument: (_, { id }, ctx) => ctx.documents.reingest(id),
    deleteDocument: (_, { id }, ctx) => ctx.documents.delete(id),
  },
  Subscription: {
    documentStatusChanged: {
      subscribe: (_, args, ctx) => ctx.documents.statusChanges(args),
      resolve: (doc: Document) => doc,
    },
  },
  KnowledgeBase: {
    __resolveReference: (ref, ctx) => ctx.knowledgeBases.knowledgeBase(ref.id),
    tenant: (kb) => ({ id: kb.tenantId }),
    owner: (kb) => (kb.ownerId ? { id: kb.ownerId, tenant: { id: kb.tenantId } } : null),
    grants: (kb, _, ctx) => ctx.knowledgeBases.grantsOf(kb),
    documents: (kb, args, ctx) => ctx.documents.documentsOf(kb, args),
  },
  KnowledgeBaseGrant: {
    user: (grant, _, ctx) =>
      grant.reader.startsWith('user:') ? { id: grant.reader.slice(5), tenant: { id: requireTenant(ctx.principal) } } : null,
    groupId: (grant) => (grant.reader.startsWith('group:') ? grant.reader.slice(6) : null),
  },
  Document: {
    __resolveReference: (ref, ctx) => ctx.documents.document(ref.id),
    knowledgeBase: (doc, _, ctx) => ctx.knowledgeBases.requireAccess(doc.knowledgeBaseId, 'READ'),
  },
  Passage: {
    text: (passage) => passage.content,
    document: (passage, _, ctx) => ctx.documents.requireDocument(passage.documentId),
    knowledgeBase: (passage, _, ctx) => ctx.knowledgeBases.requireAccess(passage.knowledgeBaseId, 'READ'),
  },
  Tenant: {
    knowledgeBases: (tenant, _, ctx) => ctx.knowledgeBases.knowledgeBasesOf(tenant.id),
  },
};
