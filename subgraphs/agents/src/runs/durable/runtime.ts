/**
 * DBOS Transact, set up for Jarvis's runs: one run engine per process, its system tables in a schema of the
 * agents database on PostgreSQL, or in a PGlite of its own in the embedded default (pglite-pool.ts). A run is a
 * DBOS workflow whose id is the run's id; its fork branches are child workflows.
 *
 * DBOS recovers the runs of its own executor id when it starts. Replicas each take a stable executor id and
 * beat in `system_run_executors` (lease.ts); a replica whose beat is older than the lease is dead, and a live one
 * hands its unfinished runs back to DBOS's queue, where a live replica picks them up.
 */
import { DBOS, Error as DBOSErrors } from '@dbos-inc/dbos-sdk';
import type { PGlite } from '@electric-sql/pglite';
import type { Principal } from '@jarvis/platform/contracts';
import type { Logger } from '@jarvis/platform/logger';
import type { Branch, DurableHost } from '../engine/ports.ts';
import { dbosHost } from './host.ts';
import { PglitePool } from './pglite-pool.ts';

/** Bump when a change to the engine would take a different path through a run started before it. */
export const ENGINE_VERSION = 'jarvis-runs-1';

export interface RunSpec {
  runId: string;
  tenantId: string;
  principal: Principal;
  kind: 'WORKFLOW' | 'AGENT';
  /** The version's document, pinned for the run's whole life. */
  document: Record<string, unknown>;
  input: unknown;
  /** When the run must have ended (epoch ms), from the workflow's `timeout`. */
  deadline?: number | undefined;
  /** The W3C trace context of the request that started it: the run's span is its child. */
  trace?: Record<string, string> | undefined;
}

/** What runs a run and a branch: the agents subgraph's engine. */
export interface RunExecutor {
  execute(spec: RunSpec, host: DurableHost): Promise<unknown>;
  executeBranch(spec: RunSpec, branch: Branch, host: DurableHost): Promise<unknown>;
}

let executor: RunExecutor | undefined;
const engine = (): RunExecutor => {
  if (!executor) throw new Error('the run engine is not open');
  return executor;
};

const hostFor = (spec: RunSpec): DurableHost =>
  dbosHost(async (workflowId, branch) => {
    const handle = await DBOS.startWorkflow(branchWorkflow, { workflowID: workflowId })(spec, branch);
    return { workflowId, handle, getResult: () => handle.getResult() };
  });

const runWorkflow = DBOS.registerWorkflow((spec: RunSpec) => engine().execute(spec, hostFor(spec)), { name: 'jarvis.run' });
const branchWorkflow = DBOS.registerWorkflow((spec: RunSpec, branch: Branch) => engine().executeBranch(spec, branch, hostFor(spec)), {
  name: 'jarvis.branch',
});

export type SystemDatabase = { url: string; schema: string } | { pglite: PGlite };

export interface DurableRuntimeOptions {
  systemDatabase: SystemDatabase;
  executorId: string;
  log: Logger;
}

export interface DurableRuntime {
  readonly executorId: string;
  start(spec: RunSpec): Promise<void>;
  /** Delivers `message` to what the run waits for on `topic`, once per idempotency key. */
  send(runId: string, topic: string, message: unknown, idempotencyKey: string): Promise<void>;
  cancel(runId: string): Promise<void>;
  /** Hands the unfinished runs of a dead executor back to the queue, where a live replica takes them; how many. */
  resumeRunsOf(executorId: string): Promise<number>;
  close(): Promise<void>;
}

export function isCancellation(error: unknown): boolean {
  return error instanceof DBOSErrors.DBOSWorkflowCancelledError || error instanceof DBOSErrors.DBOSAwaitedWorkflowCancelledError;
}

export async function openDurableRuntime(options: DurableRuntimeOptions, runs: RunExecutor): Promise<DurableRuntime> {
  if (executor) throw new Error('a run engine is open in this process already: one agents subgraph per process');
  executor = runs;
  const database =
    'pglite' in options.systemDatabase
      ? { systemDatabasePool: new PglitePool(options.systemDatabase.pglite) as never }
      : { systemDatabaseUrl: options.systemDatabase.url, systemDatabaseSchemaName: options.systemDatabase.schema, systemDatabasePoolSize: 6 };
  DBOS.setConfig({
    name: 'jarvis-agents',
    ...database,
    executorID: options.executorId,
    applicationVersion: ENGINE_VERSION,
    logLevel: 'warn',
  } as Parameters<typeof DBOS.setConfig>[0]);
  try {
    await DBOS.launch();
  } catch (error) {
    executor = undefined;
    throw error;
  }
  options.log.info({ executorId: options.executorId }, 'run engine started');

  return {
    executorId: options.executorId,
    async start(spec) {
      await DBOS.startWorkflow(runWorkflow, { workflowID: spec.runId })(spec);
    },
    send: (runId, topic, message, idempotencyKey) => DBOS.send(runId, message, topic, idempotencyKey),
    cancel: (runId) => DBOS.cancelWorkflow(runId, { cancelChildren: true }),
    async resumeRunsOf(executorId) {
      const pending = await DBOS.listWorkflows({ status: 'PENDING', executorId });
      const ids = pending.map((workflow) => workflow.workflowID);
      if (ids.length) await DBOS.resumeWorkflows(ids);
      return ids.length;
    },
    async close() {
      await DBOS.shutdown();
      executor = undefined;
    },
  };
}
