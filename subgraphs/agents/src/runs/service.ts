/**
 * Runs of the caller's tenant: started at the version a label points at (or one named), the input checked against
 * the workflow's schema, within the plan's concurrent runs; followed, approved or rejected, cancelled. The run
 * itself goes on in the engine (engine.ts), as the member who started it.
 */
import { randomUUID } from 'node:crypto';
import { PLAN_QUOTAS, requirePermission, type Principal } from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { badUserInput, conflict, forbidden, notFound, rateLimited } from '@jarvis/platform/errors';
import { isUuid } from '@jarvis/platform/ids';
import { checkInput, parseInput, tenantLoader } from '@jarvis/platform/subgraph';
import { currentTraceContext } from '@jarvis/platform/telemetry';
import { tailStream } from '@jarvis/platform/streams';
import { z } from 'zod';
import { definitionName, labelName } from '../definitions/names.ts';
import type { DecideRunInput, StartRunInput } from '../generated/schema-types.ts';
import type { RunEngine } from './engine.ts';
import { timeoutMs } from './engine/durations.ts';
import type { ApprovalDecision } from './engine/ports.ts';
import { checkRunInput } from './input-schema.ts';
import { RunRecorder } from './recorder.ts';
import type { RunSignals } from './signals.ts';
import * as store from './store.ts';
import type { Run, RunEvent, RunStatus } from './store.ts';
import { documentOf, resolveVersion } from './versions.ts';

const page = (max: number) => z.number().int().min(1, 'must be at least 1').max(max, `at most ${max}`);
const startChecks = z.object({
  definitionId: z.uuid('must be a definition id').nullish(),
  name: definitionName.nullish(),
  label: labelName,
  version: z.number().int().min(1).nullish(),
});
const MAX_INPUT_BYTES = 256 * 1024;
const EVENTS_PAGE = 200;

export interface RunServiceDeps {
  engine: RunEngine;
  signals: RunSignals;
}

export class RunService {
  private readonly byId;

  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly deps: RunServiceDeps,
  ) {
    this.byId = tenantLoader(db, async (tx, ids) => new Map((await store.runsByIds(tx, ids)).map((run) => [run.id, run])));
  }

  /** The tenant's run; null when there is none. Entities resolve through here, so it checks the permission itself. */
  async run(id: string): Promise<Run | null> {
    const tenantId = requirePermission(this.principal, 'agents:read');
    return this.byId.load({ tenantId, id });
  }

  async runsOf(tenantId: string, filter: { definitionId?: string; status?: RunStatus | null }, first: number): Promise<Run[]> {
    const limit = parseInput(z.object({ first: page(200) }), { first }).first;
    return this.db.withTenant(tenantId, (tx) => store.latestRuns(tx, filter, limit));
  }

  steps(run: Run) {
    return this.db.withTenant(run.tenantId, (tx) => store.stepsOf(tx, run.id));
  }

  events(run: Run, afterSeq: number, first: number): Promise<RunEvent[]> {
    const limit = parseInput(z.object({ first: page(1000) }), { first }).first;
    return this.db.withTenant(run.tenantId, (tx) => store.eventsAfter(tx, run.id, Math.max(0, afterSeq), limit));
  }

  async start(given: StartRunInput): Promise<Run> {
    const tenantId = requirePermission(this.principal, 'agents:run');
    const input = checkInput(startChecks, given);
    if (Buffer.byteLength(JSON.stringify(given.input ?? null)) > MAX_INPUT_BYTES) throw conflictingSize();
    const { run, document, deadline } = await this.db.withTenant(tenantId, async (tx) => {
      const resolved = await resolveVersion(tx, input);
      const document = documentOf(resolved);
      if (resolved.definition.kind === 'WORKFLOW') checkRunInput(`${resolved.definition.id}/${resolved.version.number}`, document, given.input ?? null);
      await store.lockTenantRuns(tx, tenantId);
      const allowed = PLAN_QUOTAS[this.principal.plan ?? 'FREE'].concurrentRuns;
      if ((await store.runningCount(tx)) >= allowed) {
        throw rateLimited(`the tenant's plan allows ${allowed} runs under way at once: wait for one to end`, 5_000, 'QUOTA_EXCEEDED');
      }
      const run = await store.insertRun(tx, {
        id: randomUUID(),
        tenantId,
        definitionId: resolved.definition.id,
        version: resolved.version.number,
        label: resolved.label,
        kind: resolved.definition.kind,
        input: given.input ?? null,
        startedById: this.principal.userId ?? null,
      });
      const limit = resolved.definition.kind === 'WORKFLOW' ? timeoutMs(document.timeout) : undefined;
      return { run, document, deadline: limit === undefined ? undefined : run.startedAt.getTime() + limit };
    });
    try {
      await this.deps.engine.start({
        runId: run.id,
        tenantId,
        principal: this.principal,
        kind: run.kind,
        document,
        input: run.input,
        deadline,
        trace: currentTraceContext(),
      });
    } catch (error) {
      await new RunRecorder(this.db, { runId: run.id, tenantId }).ended('ERROR', { error: { code: 'ENGINE_UNAVAILABLE', message: 'the run engine could not start the run', path: '' } });
      throw error;
    }
    return run;
  }

  approve(given: DecideRunInput): Promise<Run> {
    return this.decide(given, true);
  }

  reject(given: DecideRunInput): Promise<Run> {
    return this.decide(given, false);
  }

  /** Stops the run: CANCELLED at once for callers, the engine stops after the step under way. */
  async cancel(id: string): Promise<Run> {
    const tenantId = requirePermission(this.principal, 'agents:run');
    const run = await this.db.withTenant(tenantId, async (tx) => {
      const run = isUuid(id) ? await store.lockRun(tx, id) : undefined;
      if (!run) throw notFound(`no run ${id}`);
      const own = run.startedById !== null && run.startedById === this.principal.userId;
      if (!own && !this.principal.permissions.includes('agents:approve')) throw forbidden("cancelling another member's run needs the agents:approve permission");
      return run;
    });
    if (store.TERMINAL_STATUSES.includes(run.status)) return run;
    await new RunRecorder(this.db, { runId: run.id, tenantId }).ended('CANCELLED', {});
    await this.deps.engine.cancel(run.id);
    return (await this.db.withTenant(tenantId, (tx) => store.runsByIds(tx, [run.id])))[0]!;
  }

  /** A run's events after `afterSeq`, then as they come, ending after DONE, ERROR or CANCELLED. */
  async follow(runId: string, afterSeq: number): Promise<AsyncIterableIterator<RunEvent>> {
    const run = await this.run(runId);
    if (!run) throw notFound(`no run ${runId}`);
    const { signals, engine } = this.deps;
    return tailStream<RunEvent>({
      afterSeq: Math.max(0, afterSeq),
      read: (after) => this.db.withTenant(run.tenantId, (tx) => store.eventsAfter(tx, run.id, after, EVENTS_PAGE)),
      pageSize: EVENTS_PAGE,
      seqOf: (event) => event.seq,
      isLast: (event) => store.isTerminalEvent(event.type),
      heartbeat: () => ({ runId: run.id, seq: 0, type: 'HEARTBEAT', step: null, name: null, output: null, error: null, at: new Date() }),
      heartbeatMs: engine.heartbeatMs,
      onCommit: (wake) => signals.onEvents(run.id, wake),
    });
  }

  private async decide(given: DecideRunInput, approved: boolean): Promise<Run> {
    const tenantId = requirePermission(this.principal, 'agents:approve');
    const comment = given.comment ? parseInput(z.string().max(2000, 'at most 2000 characters'), given.comment) : null;
    const pending = await this.db.withTenant(tenantId, async (tx) => {
      const run = isUuid(given.runId) ? await store.lockRun(tx, given.runId) : undefined;
      if (!run) throw notFound(`no run ${given.runId}`);
      const approval = run.pendingApproval;
      if (run.status !== 'WAITING' || !approval || approval.decided) throw conflict('the run is not waiting for an approval');
      await store.markApprovalDecided(tx, run.id, true);
      return { run, topic: approval.topic };
    });
    const decision: ApprovalDecision = { approved, comment, by: this.principal.userId ?? null, at: new Date().toISOString() };
    try {
      await this.deps.engine.send(pending.run.id, pending.topic, decision, `${pending.run.id}:${pending.topic}`);
    } catch (error) {
      await this.db.withTenant(tenantId, (tx) => store.markApprovalDecided(tx, pending.run.id, false));
      throw error;
    }
    return pending.run;
  }
}

const conflictingSize = () => badUserInput(`a run's input is at most ${MAX_INPUT_BYTES / 1024} KiB`, 'input');
