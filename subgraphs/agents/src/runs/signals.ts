/** That a run's new events committed, from whichever replica wrote them (LISTEN/NOTIFY): followers then read the table. */
import { EventEmitter } from 'node:events';
import type { Database } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';
import { listenJson } from '@jarvis/platform/notifications';
import { z } from 'zod';
import { RUN_EVENTS_CHANNEL } from './recorder.ts';

export interface RunSignals {
  onEvents(runId: string, wake: () => void): () => void;
  close(): Promise<void>;
}

export async function openRunSignals(db: Database, log: Logger): Promise<RunSignals> {
  const committed = new EventEmitter().setMaxListeners(0);
  const stop = await listenJson(db, RUN_EVENTS_CHANNEL, z.object({ runId: z.uuid(), seq: z.number() }), log, (signal) => committed.emit(signal.runId));
  return {
    onEvents(runId, wake) {
      committed.on(runId, wake);
      return () => void committed.off(runId, wake);
    },
    close: stop,
  };
}
