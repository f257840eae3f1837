/**
 * One subscriber's view of an answer: the events after `afterSeq` from the table, then each batch as it
 * commits (woken by AnswerSignals), ending after DONE or ERROR; a HEARTBEAT (the last seq again) whenever
 * nothing came for `heartbeatMs`. While open it tells the generator it is watched, so the model call goes on.
 */
import { randomUUID } from 'node:crypto';
import type { Database } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';
import { tailStream } from '@jarvis/platform/streams';
import { eventsAfter, isTerminal, type AnswerEvent } from './events-store.ts';
import type { AnswerSignals } from './signals.ts';

const PAGE = 500;

export interface StreamOptions {
  db: Database;
  tenantId: string;
  messageId: string;
  afterSeq: number;
  signals: AnswerSignals;
  heartbeatMs: number;
  /** How often the subscriber says it still watches: well within the generator's abandon time. */
  watchEveryMs: number;
  log: Logger;
}

export function answerStream(options: StreamOptions): AsyncIterableIterator<AnswerEvent> {
  const { db, tenantId, messageId, signals } = options;
  const watcher = randomUUID();
  const announce = (watching: boolean) =>
    signals.announce(messageId, watcher, watching).catch((error: unknown) => options.log.warn({ err: error }, 'could not announce a watcher'));
  void announce(true);
  const watching = setInterval(() => void announce(true), options.watchEveryMs);
  return tailStream<AnswerEvent>({
    afterSeq: options.afterSeq,
    read: (after) => db.withTenant(tenantId, (tx) => eventsAfter(tx, messageId, after, PAGE)),
    pageSize: PAGE,
    seqOf: (event) => event.seq,
    isLast: (event) => isTerminal(event.type),
    heartbeat: (seq) => ({ messageId, seq, type: 'HEARTBEAT' }),
    heartbeatMs: options.heartbeatMs,
    onCommit: (wake) => signals.onEvents(messageId, wake),
    onClose() {
      clearInterval(watching);
      void announce(false);
    },
  });
}
