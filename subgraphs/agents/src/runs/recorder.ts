/**
 * What callers see of a run, written as the engine goes: steps, the event log, the run's status. Every write is
 * idempotent by the engine's key (a replay after a crash writes nothing twice), in one tenant-scoped transaction
 * that also wakes the run's followers when it commits.
 */
import type { Database, Transaction } from '@jarvis/platform/db';
import { notifyJson } from '@jarvis/platform/notifications';
import type { ApprovalDecision, Recorder, StepRecord, Usage } from './engine/ports.ts';
import { appendEvent, cancelOpenSteps, recordStepEnd, recordStepStart, setRunStatus, setStepStatus, type RunError, type RunEventType, type RunStatus } from './store.ts';

export const RUN_EVENTS_CHANNEL = 'agents_run_events';
const CHANNEL = { channel: RUN_EVENTS_CHANNEL };

export interface RunRef {
  runId: string;
  tenantId: string;
}

export class RunRecorder implements Recorder {
  /** Each step's number and name by key, as stepStarted recorded them (again, on a replay). */
  private readonly steps = new Map<string, { step: number; name: string }>();

  constructor(
    private readonly db: Database,
    private readonly run: RunRef,
  ) {}

  async started(): Promise<void> {
    await this.write((tx) => this.event(tx, 'started', 'STARTED'));
  }

  async stepStarted(step: StepRecord): Promise<number> {
    const number = await this.write((tx) => recordStepStart(tx, { ...step, tenantId: this.run.tenantId, runId: this.run.runId }, CHANNEL));
    this.steps.set(step.key, { step: number, name: step.name });
    return number;
  }

  async stepFinished(key: string, output: unknown, usage?: Usage): Promise<void> {
    await this.write((tx) => recordStepEnd(tx, this.run, key, { status: 'DONE', output, ...usage }, CHANNEL));
  }

  async stepFailed(key: string, error: RunError): Promise<void> {
    await this.write((tx) => recordStepEnd(tx, this.run, key, { status: 'ERROR', error }, CHANNEL));
  }

  async waiting(key: string, approval: { topic: string; expiresAt: string | null }): Promise<void> {
    const { step = 0, name } = this.steps.get(key) ?? {};
    await this.write(async (tx) => {
      await setStepStatus(tx, this.run.runId, key, 'WAITING');
      await setRunStatus(tx, this.run.runId, { status: 'WAITING', pendingApproval: { ...approval, step } });
      await this.event(tx, `${key}:approval`, 'APPROVAL_NEEDED', { step, name });
    });
  }

  async decided(key: string, decision: ApprovalDecision): Promise<void> {
    await this.write(async (tx) => {
      await setStepStatus(tx, this.run.runId, key, 'RUNNING');
      await setRunStatus(tx, this.run.runId, { status: 'RUNNING', pendingApproval: null });
      await this.event(tx, `${key}:decided`, decision.approved ? 'APPROVED' : 'REJECTED', {
        ...this.steps.get(key),
        output: decision,
      });
    });
  }

  async ended(status: Extract<RunStatus, 'DONE' | 'ERROR' | 'CANCELLED'>, result: { output?: unknown; error?: RunError }): Promise<void> {
    await this.write(async (tx) => {
      await cancelOpenSteps(tx, this.run.runId);
      const changed = await setRunStatus(tx, this.run.runId, { status, output: result.output ?? null, error: result.error ?? null });
      if (changed) await this.event(tx, 'ended', status, { output: result.output, error: result.error });
    });
  }

  private async event(
    tx: Transaction,
    key: string,
    type: RunEventType,
    details: { step?: number | undefined; name?: string | undefined; output?: unknown; error?: RunError | undefined } = {},
  ): Promise<void> {
    const seq = await appendEvent(tx, { ...details, tenantId: this.run.tenantId, runId: this.run.runId, key, type });
    if (seq !== undefined) await notifyJson(tx, RUN_EVENTS_CHANNEL, { runId: this.run.runId, seq });
  }

  private write<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.db.withTenant(this.run.tenantId, work);
  }
}
