/**
 * Document status changes as the database announces them (migration 0007), for every subscriber in this
 * process: one LISTEN, fanned out. A change names the document only; subscribers read it themselves, under
 * their caller's tenant and access rules.
 */
import { EventEmitter, on } from 'node:events';
import { listenJson, type Database, type Logger } from '@jarvis/platform';
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
  /** Changes from now on, until the iterator is returned. */
  changes(): AsyncIterator<[StatusChange]>;
  close(): Promise<void>;
}

export async function openDocumentStatusFeed(db: Database, log: Logger): Promise<DocumentStatusFeed> {
  const feed = new EventEmitter().setMaxListeners(0);
  const stop = await listenJson(db, CHANNEL, statusChange, log, (change) => feed.emit('change', change));
  return {
    changes: () => on(feed, 'change') as AsyncIterator<[StatusChange]>,
    close: stop,
  };
}
