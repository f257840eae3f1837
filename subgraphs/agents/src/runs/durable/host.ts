/**
 * The engine's durable host on DBOS Transact: each step a checkpointed DBOS step, waits and sleeps DBOS's own
 * (durable across restarts, holding no connection), fork branches child workflows with ids derived from the
 * run's, so a replay finds the same children again.
 */
import { DBOS, Error as DBOSErrors } from '@dbos-inc/dbos-sdk';
import { timeoutError } from '../engine/errors.ts';
import type { Branch, DurableHost } from '../engine/ports.ts';

/** What DBOS waits at most when a workflow waits with no timeout of its own (an approval with none): ten years. */
const FOR_EVER_SECONDS = 10 * 365 * 86_400;

export type StartBranch = (workflowId: string, branch: Branch) => Promise<{ workflowId: string; getResult(): Promise<unknown> }>;

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
      // Which branch finished first is a fact of this execution: checkpointed, so a replay takes the same winner.
      const winner = await DBOS.runStep(
        () => Promise.race(handles.map((handle) => DBOS.retrieveWorkflow(handle.workflowId).getResult().then((output) => ({ output })))),
        { name: `${key}/first` },
      );
      await DBOS.cancelWorkflows(handles.map((handle) => handle.workflowId));
      return winner.output;
    },
  };
}

function stepSignal(): AbortSignal {
  const status = DBOS.stepStatus;
  const signals = [status?.cancelSignal, status?.timeoutSignal].filter((signal): signal is AbortSignal => signal !== undefined);
  return signals.length ? AbortSignal.any(signals) : new AbortController().signal;
}
