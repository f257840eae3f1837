import { createHash, randomUUID } from 'node:crypto';
import { requirePermission, requireTenant, type Principal } from '@jarvis/platform/contracts';
import type { Database, Transaction } from '@jarvis/platform/db';
import { badUserInput, notFound, AppError, ErrorCode } from '@jarvis/platform/errors';
import { tenantQuota } from '@jarvis/platform/quota-overrides';
import { mapStream, startWith } from '@jarvis/platform/streams';
import { checkInput, parseInput, tenantLoader, type Upload } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { AddDocumentInput, KnowledgeBaseDocumentsArgs, SubscriptionDocumentStatusChangedArgs } from '../generated/schema-types.ts';
import { DEFAULT_MAX_BYTES, MEDIA_TYPES, mediaTypeOf, supportedMediaType } from '../ingestion/extract.ts';
import { queueIngestion } from '../ingestion/worker.ts';
import { storageReleased } from '../usage.ts';
import { readerName } from '../knowledge-bases/access.ts';
import type { KnowledgeBaseService, VisibleKnowledgeBase } from '../knowledge-bases/service.ts';
import type { VectorStore } from '../vectors/index.ts';
import type { DocumentStatusFeed } from './status-feed.ts';
import * as store from './store.ts';
import type { Document } from './store.ts';

const readerInput = z
  .object({ userId: z.uuid().nullish(), groupId: z.uuid().nullish() })
  .transform((input, ctx) => readerName(input) ?? (ctx.addIssue({ code: 'custom', message: 'name exactly one of userId and groupId' }), z.NEVER));

const addChecks = z.object({
  knowledgeBaseId: z.uuid(),
  title: z.string().trim().min(1, 'must not be empty').max(500, 'at most 500 characters').nullish(),
  content: z.string().min(1, 'must not be empty').nullish(),
  readers: z.array(readerInput).max(100, 'at most 100 readers').nullish(),
});

/** What was sent, as bytes with a media type and a title, from text content or from a file. */
function received(input: { title?: string | null; content?: string | null; file?: Upload | null; mediaType?: string | null }) {
  if (Boolean(input.content) === Boolean(input.file)) throw badUserInput('send exactly one of content and file', 'content');
  if (input.file) {
    const mediaType = mediaTypeOf(input.file.filename, input.mediaType ?? input.file.mediaType);
    if (!mediaType) throw badUserInput(`"${input.file.filename}" is not a document type this service reads (${MEDIA_TYPES.join(', ')})`, 'file');
    return { content: input.file.content, mediaType, title: input.title ?? input.file.filename };
  }
  const mediaType = supportedMediaType(input.mediaType ?? 'text/markdown');
  if (!mediaType) throw badUserInput(`unsupported media type "${input.mediaType}"`, 'mediaType');
  if (!input.title) throw badUserInput('a title is required with content', 'title');
  return { content: Buffer.from(input.content!, 'utf8'), mediaType, title: input.title };
}

const listChecks = z.object({
  first: z.number().int().min(1, 'at least 1').max(500, 'at most 500').nullish(),
});

const watchInput = z.object({
  knowledgeBaseId: z.uuid(),
  documentIds: z.array(z.uuid()).min(1, 'name at least one document, or none').max(100, 'at most 100 documents').nullish(),
});

/**
 * What the service needs beyond the request: where vectors live, the relay to wake after queuing a job, and
 * the status changes subscribers follow.
 */
export interface DocumentServiceDeps {
  vectors: () => Promise<VectorStore>;
  outbox: { notify(): void };
  statusFeed: DocumentStatusFeed;
}

export class DocumentService {
  private readonly byId;

  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly knowledgeBases: KnowledgeBaseService,
    private readonly deps: DocumentServiceDeps,
  ) {
    this.byId = tenantLoader(db, async (tx, ids) => new Map((await store.documentsByIds(tx, ids)).map((doc) => [doc.id, doc])));
  }

  private forget(): void {
    this.byId.clearAll();
    this.knowledgeBases.forget();
  }

  /** The document, when the caller may read it and its knowledge base (kb:read, as every read: see `KnowledgeBaseService`). */
  async document(id: string): Promise<Document | null> {
    const doc = await this.byId.load({ tenantId: requirePermission(this.principal, 'kb:read'), id });
    if (!doc) return null;
    const kb = await this.knowledgeBases.knowledgeBase(doc.knowledgeBaseId);
    return kb && this.mayRead(kb, doc) ? doc : null;
  }

  /**
   * The named documents of a knowledge base as they are now, then each document of it whose status changes, as
   * it is after the change — only documents the caller may read at that moment, each state once.
   */
  async statusChanges(args: SubscriptionDocumentStatusChangedArgs): Promise<AsyncIterableIterator<Document>> {
    const tenantId = requireTenant(this.principal);
    const { knowledgeBaseId, documentIds } = parseInput(watchInput, args);
    await this.knowledgeBases.requireAccess(knowledgeBaseId, 'READ');
    const watched = documentIds ? new Set(documentIds) : undefined;
    // Listening before reading the current states: a change in between is not missed.
    const changes = this.deps.statusFeed.changes(tenantId, knowledgeBaseId);
    const sent = new Map<string, string>();
    const unsent = (doc: Document | null) => {
      if (!doc || doc.knowledgeBaseId !== knowledgeBaseId || sent.get(doc.id) === stateOf(doc)) return undefined;
      sent.set(doc.id, stateOf(doc));
      return doc;
    };
    this.forget();
    const current = (await Promise.all([...(watched ?? [])].map((id) => this.document(id)))).map(unsent);
    const followed = mapStream(changes, async ([change]) => {
      if (watched && !watched.has(change.documentId)) return undefined;
      this.forget();
      return unsent(await this.document(change.documentId));
    });
    return startWith(current.filter((doc): doc is Document => doc !== undefined), followed);
  }

  /** The knowledge base's newest documents the caller may read. */
  async documentsOf(kb: VisibleKnowledgeBase, args: KnowledgeBaseDocumentsArgs): Promise<Document[]> {
    const { first } = parseInput(listChecks, args);
    return this.db.withTenant(kb.tenantId, (tx) =>
      store.documentsOf(tx, {
        knowledgeBaseIds: [kb.id],
        readers: this.knowledgeBases.readers,
        unrestricted: kb.access === 'MANAGE' ? [kb.id] : [],
        status: args.status,
        first: first ?? 50,
      }),
    );
  }

  /** Stores the document as PENDING and queues its ingestion, in one transaction; the same content again returns the first. */
  async add(given: AddDocumentInput): Promise<Document> {
    const input = checkInput(addChecks, given);
    const kb = await this.knowledgeBases.requireAccess(input.knowledgeBaseId, 'WRITE');
    const { content, mediaType, title } = received(input);
    if (content.byteLength > DEFAULT_MAX_BYTES) throw badUserInput(`at most ${DEFAULT_MAX_BYTES} bytes`, 'content');
    const contentHash = createHash('sha256').update(content).digest('hex');
    const doc = await this.db.withTenant(kb.tenantId, async (tx) => {
      const existing = await store.documentByContent(tx, kb.id, contentHash);
      if (existing) return existing;
      await this.requireStorage(tx, content.byteLength);
      const row = { id: randomUUID(), tenantId: kb.tenantId, knowledgeBaseId: kb.id, title, mediaType, content, contentHash };
      const inserted = await store.insertDocument(tx, { ...row, readers: [...new Set(input.readers ?? [])].sort(), createdBy: this.principal.userId ?? null });
      if (!inserted) return (await store.documentByContent(tx, kb.id, contentHash))!;
      await queueIngestion(tx, inserted, this.principal.isolation);
      return inserted;
    });
    this.deps.outbox.notify();
    return doc;
  }

  /** Queues the document's ingestion again, from the content it was added with. */
  async reingest(id: string): Promise<Document> {
    const { doc } = await this.requireWritable(id);
    const requeued = await this.db.withTenant(doc.tenantId, async (tx) => {
      const current = await store.setStatus(tx, doc.id, 'PENDING', { attempts: 'reset' });
      if (!current) throw notFound(`no document ${id}`);
      await queueIngestion(tx, current, this.principal.isolation);
      return current;
    });
    this.deps.outbox.notify();
    return requeued;
  }

  /** Deletes the document with its chunks, then its vectors: search never returns a vector without its chunk. */
  async delete(id: string): Promise<boolean> {
    const { doc } = await this.requireWritable(id);
    const released = await this.db.withTenant(doc.tenantId, async (tx) => {
      const deleted = await store.deleteDocument(tx, doc.id);
      return storageReleased(tx, deleted ? [deleted] : [], this.principal.isolation);
    });
    if (released) this.deps.outbox.notify();
    await (await this.deps.vectors()).deleteDocument(doc.tenantId, doc.id, this.principal.isolation);
    return true;
  }

  mayRead(kb: VisibleKnowledgeBase, doc: Document): boolean {
    return kb.access === 'MANAGE' || doc.readers.length === 0 || doc.readers.some((r) => this.knowledgeBases.readers.includes(r));
  }

  /** The document, when the caller may read it; NOT_FOUND otherwise. */
  async requireDocument(id: string): Promise<Document> {
    const doc = await this.document(id);
    if (!doc) throw notFound(`no document ${id}`);
    return doc;
  }

  private async requireWritable(id: string): Promise<{ doc: Document; kb: VisibleKnowledgeBase }> {
    const doc = await this.requireDocument(id);
    const kb = await this.knowledgeBases.requireAccess(doc.knowledgeBaseId, 'WRITE');
    return { doc, kb };
  }

  /**
   * The tenant's plan sets its storage quota, which its admins may lower (usage's setQuota, announced to this
   * service). Serialised per tenant, so two documents added at once cannot both fit into the last free bytes.
   */
  private async requireStorage(tx: Transaction, adding: number): Promise<void> {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('knowledge.storage:' || $1))`, [this.principal.tenantId]);
    const limit = (await tenantQuota(tx, this.principal.plan)).storageBytes;
    const used = await store.storedBytes(tx);
    if (used + adding > limit) {
      throw new AppError(ErrorCode.QUOTA_EXCEEDED, `the storage quota is used up: ${used} of ${limit} bytes stored, and this document has ${adding}`, {
        limit,
        used,
      });
    }
  }
}

/** A state once per attempt: a retry that passes through the same status again is news. */
const stateOf = (doc: Document) => `${doc.status}:${doc.attempts}`;
