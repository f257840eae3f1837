/**
 * Document status changes as the database announces them (migration 0007), for every subscriber in this
 * process: one LISTEN, fanned out. A change names the document only; subscribers read it themselves, under
 * their caller's tenant and access rules.
 */
import { EventEmitter, on } from 'node:events';
import type { Database } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';
import { listenJson } from '@jarvis/platform/notifications';
import { z } from 'zod';
import { DOCUMENT_STATUSES } from './store.ts';

const CHANNEL = 'knowledge_document_status';

const statusChange = z.object({
  tenantId: z.uuid(),
  knowledgeBaseId: z.uuid(),
  documentId: z.uuid(),
  status: z.enum(DOCUMENT_STATUSES),
});

export type StatusChange = z.infer<typeof statusChange>;

export interface DocumentStatusFeed {
  /** The knowledge base's changes from now on, until the iterator is returned. */
  changes(tenantId: string, knowledgeBaseId: string): AsyncIterator<[StatusChange]>;
  close(): Promise<void>;
}

export async function openDocumentStatusFeed(db: Database, log: Logger): Promise<DocumentStatusFeed> {
  const feed = new EventEmitter().setMaxListeners(0);
  // Emitted per knowledge base, so a change wakes only the subscribers of its own.
  const keyOf = (tenantId: string, knowledgeBaseId: string) => `${tenantId}:${knowledgeBaseId}`;
  const stop = await listenJson(db, CHANNEL, statusChange, log, (change) => feed.emit(keyOf(change.tenantId, change.knowledgeBaseId), change));
  return {
    changes: (tenantId, knowledgeBaseId) => on(feed, keyOf(tenantId, knowledgeBaseId)) as AsyncIterator<[StatusChange]>,
    close: stop,
  };
}
