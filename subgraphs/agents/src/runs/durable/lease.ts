/**
 * Which run-engine replicas are alive. Each beats in `system_run_executors` every third of the lease; a replica
 * whose beat is older than the lease is taken for dead, and the first live replica to mark it swept hands its
 * unfinished runs back to the queue (DBOS alone recovers only its own executor's runs). The beat is written before
 * the engine starts, so a replica coming back under its old id is alive again before DBOS recovers its runs.
 */
import type { Database } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';

export async function beat(db: Database, executorId: string): Promise<void> {
  await db.withSystem((tx) =>
    tx.query(`INSERT INTO system_run_executors (executor_id) VALUES ($1) ON CONFLICT (executor_id) DO UPDATE SET beat_at = now()`, [executorId]),
  );
}

/** Dead executors, each claimed by exactly one sweeper: whoever marks it swept since its last beat. */
export async function claimDeadExecutors(db: Database, self: string, leaseMs: number): Promise<string[]> {
  const rows = await db.withSystem((tx) =>
    tx.query<{ executorId: string }>(
      `UPDATE system_run_executors SET swept_at = now()
       WHERE executor_id <> $1 AND beat_at < now() - make_interval(secs => $2::float8 / 1000)
         AND (swept_at IS NULL OR swept_at < beat_at)
       RETURNING executor_id AS "executorId"`,
      [self, leaseMs],
    ),
  );
  return rows.map((row) => row.executorId);
}

export interface LeaseOptions {
  db: Database;
  executorId: string;
  leaseMs: number;
  log: Logger;
  /** Hands a dead executor's runs back to the queue; how many. */
  resumeRunsOf(executorId: string): Promise<number>;
}

/** Beats, and sweeps for dead replicas, until stopped. */
export function keepLease({ db, executorId, leaseMs, log, resumeRunsOf }: LeaseOptions): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    await beat(db, executorId);
    for (const dead of await claimDeadExecutors(db, executorId, leaseMs)) {
      const resumed = await resumeRunsOf(dead);
      log.info({ deadExecutor: dead, resumed }, 'resumed the runs of a replica that stopped beating');
    }
  };
  const timer = setInterval(() => {
    running = running.then(tick).catch((error: unknown) => log.warn({ err: error }, 'run engine lease: beat or sweep failed'));
  }, Math.max(50, Math.floor(leaseMs / 3)));
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
