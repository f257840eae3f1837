/**
 * One subscriber's view of an answer: the events after `afterSeq` from the table, then each batch as it
 * commits (woken by AnswerSignals), ending after DONE or ERROR; a HEARTBEAT (the last seq again) whenever
 * nothing came for `heartbeatMs`. While open it tells the generator it is watched, so the model call goes on.
 */
import { randomUUID } from 'node:crypto';
import type { Database } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';
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
  const queue: AnswerEvent[] = [];
  let lastSeq = options.afterSeq;
  let ended = false;
  let closed = false;
  let woken = true;
  let wake: (() => void) | undefined;
  const stopListening = signals.onEvents(messageId, () => {
    woken = true;
    wake?.();
  });
  const announce = (watching: boolean) =>
    signals.announce(messageId, watcher, watching).catch((error: unknown) => options.log.warn({ err: error }, 'could not announce a watcher'));
  void announce(true);
  const watching = setInterval(() => void announce(true), options.watchEveryMs);

  async function fill(): Promise<void> {
    woken = false;
    const events = await db.withTenant(tenantId, (tx) => eventsAfter(tx, messageId, lastSeq, PAGE));
    queue.push(...events);
    if (events.length > 0) lastSeq = events.at(-1)!.seq;
    if (events.length === PAGE) woken = true;
  }

  /** Resolves true when woken, false after heartbeatMs of quiet (or on close). */
  function sleep(): Promise<boolean> {
    if (woken || closed) return Promise.resolve(woken);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve(false);
      }, options.heartbeatMs);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve(true);
      };
    });
  }

  function close(): void {
    if (closed) return;
    closed = true;
    clearInterval(watching);
    stopListening();
    wake?.();
    void announce(false);
  }

  const done = (): IteratorResult<AnswerEvent> => ({ done: true, value: undefined });
  return {
    async next() {
      while (!closed) {
        const event = queue.shift();
        if (event) {
          if (isTerminal(event.type)) ended = true;
          return { done: false, value: event };
        }
        if (ended) break;
        if (woken) {
          await fill();
          continue;
        }
        if (!(await sleep()) && !closed) return { done: false, value: { messageId, seq: lastSeq, type: 'HEARTBEAT' } };
      }
      close();
      return done();
    },
    async return() {
      close();
      return done();
    },
    async throw(error: unknown) {
      close();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
