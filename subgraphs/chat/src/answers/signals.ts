/**
 * What chat replicas tell each other through the database (LISTEN/NOTIFY), so any replica may generate an
 * answer and any may stream it: that an answer's new events are committed (subscribers then read them from
 * the table), and who still follows an answer (its generator cancels the model call once nobody has for a
 * while). A notification only wakes; the table is the record.
 */
import { EventEmitter } from 'node:events';
import type { Database } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';
import { listenJson, notifyJson } from '@jarvis/platform/notifications';
import { z } from 'zod';

const EVENTS_CHANNEL = 'chat_answer_events';
const WATCH_CHANNEL = 'chat_answer_watch';

const eventsCommitted = z.object({ messageId: z.uuid(), seq: z.number() });
const watching = z.object({ messageId: z.uuid(), watcher: z.uuid(), watching: z.boolean() });

export interface AnswerSignals {
  /** Calls `wake` each time events of the message commit, until the returned stop is called. */
  onEvents(messageId: string, wake: () => void): () => void;
  /** Tells the answer's generator, wherever it runs, that `watcher` follows it (again) or has left. */
  announce(messageId: string, watcher: string, isWatching: boolean): Promise<void>;
  /** When a watcher of the message was last heard of (0: never); a watcher that left is forgotten. */
  lastWatched(messageId: string, freshWithinMs: number): number;
  /** Starts collecting the message's watchers (on the generating replica) until the returned stop is called. */
  track(messageId: string): () => void;
  close(): Promise<void>;
}

export async function openAnswerSignals(db: Database, log: Logger): Promise<AnswerSignals> {
  const committed = new EventEmitter().setMaxListeners(0);
  const tracked = new Map<string, Map<string, number>>();
  const stops = await Promise.all([
    listenJson(db, EVENTS_CHANNEL, eventsCommitted, log, (signal) => committed.emit(signal.messageId)),
    listenJson(db, WATCH_CHANNEL, watching, log, (signal) => {
      const watchers = tracked.get(signal.messageId);
      if (!watchers) return;
      if (signal.watching) watchers.set(signal.watcher, Date.now());
      else watchers.delete(signal.watcher);
    }),
  ]);

  return {
    onEvents(messageId, wake) {
      committed.on(messageId, wake);
      return () => void committed.off(messageId, wake);
    },
    async announce(messageId, watcher, isWatching) {
      await db.withSystem((tx) => notifyJson(tx, WATCH_CHANNEL, { messageId, watcher, watching: isWatching }));
    },
    lastWatched(messageId, freshWithinMs) {
      const watchers = tracked.get(messageId);
      if (!watchers) return 0;
      const now = Date.now();
      let last = 0;
      for (const [watcher, seenAt] of watchers) {
        if (now - seenAt > freshWithinMs) watchers.delete(watcher);
        else last = Math.max(last, seenAt);
      }
      return last;
    },
    track(messageId) {
      tracked.set(messageId, new Map());
      return () => void tracked.delete(messageId);
    },
    async close() {
      await Promise.all(stops.map((stop) => stop()));
    },
  };
}
