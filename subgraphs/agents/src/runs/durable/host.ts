/**
 * The engine's durable host on DBOS Transact: each step a checkpointed DBOS step, waits and sleeps DBOS's own
 * (durable across restarts, holding no connection), fork branches child workflows with ids derived from the
 * run's, so a replay finds the same children again.
 */
import { DBOS, Error as DBOSErrors, type WorkflowHandle } from '@dbos-inc/dbos-sdk';
import { timeoutError } from '../engine/errors.ts';
import type { Branch, DurableHost } from '../engine/ports.ts';

/** What DBOS waits at most when a workflow waits with no timeout of its own (an approval with none): ten years. */
const FOR_EVER_SECONDS = 10 * 365 * 86_400;

export type StartBranch = (workflowId: string, branch: Branch) => Promise<{ workflowId: string; handle: WorkflowHandle<unknown>; getResult(): Promise<unknown> }>;

export function dbosHost(startBranch: StartBranch): DurableHost {
  return {
    async step(key, work, { timeoutMs } = {}) {
      try {
        return await DBOS.runStep(() => work(stepSignal()), { name: key, ...(timeoutMs !== undefined && { timeoutMS: Math.max(1, timeoutMs) }) });
      } catch (error) {
        if (error instanceof DBOSErrors.DBOSStepTimeoutError) throw timeoutError(`the step took longer than ${timeoutMs} ms`);
        throw error;
      }
    },
    sleep: (ms) => DBOS.sleep(Math.max(0, ms)),
    receive: (topic, timeoutMs) => DBOS.recv(topic, timeoutMs === null ? FOR_EVER_SECONDS : Math.max(0, timeoutMs) / 1000),
    now: () => DBOS.now(),
    async branches(key, branches, compete) {
      const parent = DBOS.workflowID!;
      const handles: Awaited<ReturnType<StartBranch>>[] = [];
      for (const [index, branch] of branches.entries()) handles.push(await startBranch(`${parent}|${key}|${index}`, branch));
      if (!compete) return Promise.all(handles.map((handle) => handle.getResult()));
      // DBOS records which finished first, so a replay takes the same winner.
      const first = await DBOS.waitFirst(handles.map((handle) => handle.handle), { pollingIntervalMs: 100 });
      const winner = handles.find((handle) => handle.workflowId === first.workflowID)!;
      await DBOS.cancelWorkflows(handles.filter((handle) => handle !== winner).map((handle) => handle.workflowId));
      return winner.getResult();
    },
  };
}

function stepSignal(): AbortSignal {
  const status = DBOS.stepStatus;
  const signals = [status?.cancelSignal, status?.timeoutSignal].filter((signal): signal is AbortSignal => signal !== undefined);
  return signals.length ? AbortSignal.any(signals) : new AbortController().signal;
}
