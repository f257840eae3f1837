import type { Transaction } from '@jarvis/platform/db';
import type { DefinitionKind } from '../validation/index.ts';

export type RunStatus = 'RUNNING' | 'WAITING' | 'DONE' | 'ERROR' | 'CANCELLED';
export type RunEventType =
  | 'STARTED'
  | 'STEP_STARTED'
  | 'STEP_FINISHED'
  | 'STEP_FAILED'
  | 'APPROVAL_NEEDED'
  | 'APPROVED'
  | 'REJECTED'
  | 'HEARTBEAT'
  | 'DONE'
  | 'ERROR'
  | 'CANCELLED';

export const TERMINAL_STATUSES: readonly RunStatus[] = ['DONE', 'ERROR', 'CANCELLED'];
export const isTerminalEvent = (type: RunEventType) => type === 'DONE' || type === 'ERROR' || type === 'CANCELLED';

export interface RunError {
  code: string;
  message: string;
  path: string;
}

export interface PendingApproval {
  topic: string;
  step: number;
  expiresAt: string | null;
  /** Somebody approved or rejected it; the engine has yet to carry on. */
  decided?: boolean;
}

export interface Run {
  id: string;
  tenantId: string;
  definitionId: string;
  version: number;
  label: string | null;
  kind: DefinitionKind;
  status: RunStatus;
  input: unknown;
  output: unknown;
  error: RunError | null;
  startedById: string | null;
  startedAt: Date;
  endedAt: Date | null;
  pendingApproval: PendingApproval | null;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  toolCalls: number;
}

export interface RunStep {
  tenantId: string;
  runId: string;
  number: number;
  key: string;
  name: string;
  path: string;
  kind: string;
  status: RunStatus;
  input: unknown;
  output: unknown;
  error: RunError | null;
  attempts: number;
  model: string | null;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  startedAt: Date;
  endedAt: Date | null;
}

export interface RunEvent {
  runId: string;
  seq: number;
  type: RunEventType;
  step: number | null;
  name: string | null;
  output: unknown;
  error: RunError | null;
  at: Date;
}

const RUN = `id, tenant_id AS "tenantId", definition_id AS "definitionId", version, label, kind, status, input, output, error,
  started_by AS "startedById", started_at AS "startedAt", ended_at AS "endedAt", pending_approval AS "pendingApproval",
  prompt_tokens::float8 AS "promptTokens", completion_tokens::float8 AS "completionTokens", cost, tool_calls AS "toolCalls"`;
const STEP = `tenant_id AS "tenantId", run_id AS "runId", number, key, name, path, kind, status, input, output, error, attempts, model,
  prompt_tokens::float8 AS "promptTokens", completion_tokens::float8 AS "completionTokens", cost, started_at AS "startedAt", ended_at AS "endedAt"`;
const EVENT = `run_id AS "runId", seq, type, step, name, output, error, at`;

const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));

export async function insertRun(
  tx: Transaction,
  run: Pick<Run, 'id' | 'tenantId' | 'definitionId' | 'version' | 'label' | 'kind' | 'input' | 'startedById'>,
): Promise<Run> {
  const [row] = await tx.query<Run>(
    `INSERT INTO runs (id, tenant_id, definition_id, version, label, kind, status, input, started_by)
     VALUES ($1, $2, $3, $4, $5, $6, 'RUNNING', $7::jsonb, $8) RETURNING ${RUN}`,
    [run.id, run.tenantId, run.definitionId, run.version, run.label, run.kind, json(run.input), run.startedById],
  );
  return row!;
}

export function runsByIds(tx: Transaction, ids: readonly string[]): Promise<Run[]> {
  return tx.query<Run>(`SELECT ${RUN} FROM runs WHERE id = ANY($1::uuid[])`, [ids]);
}

export async function lockRun(tx: Transaction, id: string): Promise<Run | undefined> {
  const [row] = await tx.query<Run>(`SELECT ${RUN} FROM runs WHERE id = $1 FOR UPDATE`, [id]);
  return row;
}

export function latestRuns(tx: Transaction, filter: { definitionId?: string; status?: RunStatus | null }, limit: number): Promise<Run[]> {
  return tx.query<Run>(
    `SELECT ${RUN} FROM runs WHERE ($1::uuid IS NULL OR definition_id = $1) AND ($2::text IS NULL OR status = $2)
     ORDER BY started_at DESC, id LIMIT $3`,
    [filter.definitionId ?? null, filter.status ?? null, limit],
  );
}

/** Runs of the tenant under way (RUNNING); counted against the plan's concurrent runs. */
export async function runningCount(tx: Transaction): Promise<number> {
  const [row] = await tx.query<{ count: number }>(`SELECT count(*)::int AS count FROM runs WHERE status = 'RUNNING'`);
  return row!.count;
}

/** Serialises run starts of one tenant until the transaction ends, so two starts cannot both take the last slot. */
export async function lockTenantRuns(tx: Transaction, tenantId: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext('agents.runs:' || $1))`, [tenantId]);
}

/** Moves a run that has not ended; returns it as it is afterwards, or undefined when it had ended. */
export async function setRunStatus(
  tx: Transaction,
  id: string,
  change: { status: RunStatus; output?: unknown; error?: RunError | null; pendingApproval?: PendingApproval | null },
): Promise<Run | undefined> {
  const ends = change.status === 'DONE' || change.status === 'ERROR' || change.status === 'CANCELLED';
  const [row] = await tx.query<Run>(
    `UPDATE runs SET status = $2,
       output = CASE WHEN $3::boolean THEN $4::jsonb ELSE output END,
       error = CASE WHEN $5::boolean THEN $6::jsonb ELSE error END,
       pending_approval = CASE WHEN $7::boolean THEN $8::jsonb ELSE pending_approval END,
       ended_at = CASE WHEN $9::boolean THEN now() ELSE ended_at END
     WHERE id = $1 AND status NOT IN ('DONE', 'ERROR', 'CANCELLED') RETURNING ${RUN}`,
    [
      id,
      change.status,
      change.output !== undefined,
      json(change.output),
      change.error !== undefined,
      json(change.error),
      change.pendingApproval !== undefined || ends,
      json(change.pendingApproval ?? null),
      ends,
    ],
  );
  return row;
}

/** Where each written event is announced (pg_notify), for the run's followers on every replica. */
export interface EventChannel {
  channel: string;
}

/**
 * Adds a step unless one with its key exists, with its STEP_STARTED event, announced on `channel` — one statement;
 * returns the step's number, new or as recorded before (a replay).
 */
export async function recordStepStart(
  tx: Transaction,
  step: Pick<RunStep, 'tenantId' | 'runId' | 'key' | 'name' | 'path' | 'kind' | 'input'>,
  { channel }: EventChannel,
): Promise<number> {
  const [created] = await tx.query<{ number: number }>(
    `WITH numbered AS (UPDATE runs SET last_step = last_step + 1, last_seq = last_seq + 1 WHERE id = $2
       AND NOT EXISTS (SELECT 1 FROM run_steps WHERE run_id = $2 AND key = $3) RETURNING last_step, last_seq),
     step AS (INSERT INTO run_steps (tenant_id, run_id, number, key, name, path, kind, status, input)
       SELECT $1, $2, last_step, $3, $4, $5, $6, 'RUNNING', $7::jsonb FROM numbered RETURNING number),
     event AS (INSERT INTO run_events (tenant_id, run_id, seq, key, type, step, name)
       SELECT $1, $2, last_seq, $3 || ':started', 'STEP_STARTED', last_step, $4 FROM numbered RETURNING seq),
     notified AS (SELECT pg_notify($8, json_build_object('runId', $2::text, 'seq', seq)::text) FROM event)
     SELECT step.number, (SELECT count(*) FROM notified) AS notified FROM step`,
    [step.tenantId, step.runId, step.key, step.name, step.path, step.kind, json(step.input), channel],
  );
  if (created) return created.number;
  const [existing] = await tx.query<{ number: number }>(`SELECT number FROM run_steps WHERE run_id = $1 AND key = $2`, [step.runId, step.key]);
  return existing!.number;
}

export interface StepEnd {
  status: 'DONE' | 'ERROR';
  output?: unknown;
  error?: RunError | null;
  model?: string | null;
  promptTokens?: number;
  completionTokens?: number;
  cost?: number;
}

/**
 * Ends a step that has not ended, adds what it used to its run's totals and writes its STEP_FINISHED or STEP_FAILED
 * event, announced on `channel` — one statement. A step ended already (a replay) is left as it is, so nothing is
 * counted twice.
 */
export async function recordStepEnd(tx: Transaction, run: { tenantId: string; runId: string }, key: string, end: StepEnd, { channel }: EventChannel): Promise<void> {
  const finished = end.status === 'DONE';
  await tx.query(
    `WITH ended AS (
       UPDATE run_steps SET status = $3, output = $4::jsonb, error = $5::jsonb, model = $6,
         prompt_tokens = $7, completion_tokens = $8, cost = $9, ended_at = now()
       WHERE run_id = $2 AND key = $10 AND status IN ('RUNNING', 'WAITING') RETURNING run_id, kind, number, name),
     totals AS (
       UPDATE runs SET prompt_tokens = prompt_tokens + $7, completion_tokens = completion_tokens + $8, cost = cost + $9,
         tool_calls = tool_calls + (SELECT count(*)::int FROM ended WHERE kind LIKE 'call:%' OR kind LIKE 'tool:%'),
         last_seq = last_seq + 1
       FROM ended WHERE runs.id = ended.run_id RETURNING runs.last_seq),
     event AS (INSERT INTO run_events (tenant_id, run_id, seq, key, type, step, name, output, error)
       SELECT $1, $2, totals.last_seq, $10 || $11, $12, ended.number, ended.name, $4::jsonb, $5::jsonb FROM totals, ended RETURNING seq),
     notified AS (SELECT pg_notify($13, json_build_object('runId', $2::text, 'seq', seq)::text) FROM event)
     SELECT count(*) FROM notified`,
    [
      run.tenantId,
      run.runId,
      end.status,
      json(finished ? end.output : null),
      json(end.error ?? null),
      end.model ?? null,
      end.promptTokens ?? 0,
      end.completionTokens ?? 0,
      end.cost ?? 0,
      key,
      finished ? ':finished' : ':failed',
      finished ? 'STEP_FINISHED' : 'STEP_FAILED',
      channel,
    ],
  );
}

/** Ends the run's steps still under way (or waiting) as CANCELLED: the run itself has ended. */
export async function cancelOpenSteps(tx: Transaction, runId: string): Promise<void> {
  await tx.query(`UPDATE run_steps SET status = 'CANCELLED', ended_at = now() WHERE run_id = $1 AND status IN ('RUNNING', 'WAITING')`, [runId]);
}

/** Marks (or unmarks) the approval a run waits for as answered, so it is answered once. */
export async function markApprovalDecided(tx: Transaction, runId: string, decided: boolean): Promise<void> {
  await tx.query(
    decided
      ? `UPDATE runs SET pending_approval = pending_approval || '{"decided": true}'::jsonb WHERE id = $1`
      : `UPDATE runs SET pending_approval = pending_approval - 'decided' WHERE id = $1`,
    [runId],
  );
}

export async function setStepStatus(tx: Transaction, runId: string, key: string, status: RunStatus): Promise<void> {
  await tx.query(`UPDATE run_steps SET status = $3 WHERE run_id = $1 AND key = $2 AND status IN ('RUNNING', 'WAITING')`, [runId, key, status]);
}

export function stepsOf(tx: Transaction, runId: string): Promise<RunStep[]> {
  return tx.query<RunStep>(`SELECT ${STEP} FROM run_steps WHERE run_id = $1 ORDER BY number`, [runId]);
}

/** Appends the event unless one with its key exists: numbered right after the run's last, with no gap. */
export async function appendEvent(
  tx: Transaction,
  event: { tenantId: string; runId: string; key: string; type: RunEventType; step?: number | null; name?: string | null; output?: unknown; error?: RunError | null },
): Promise<number | undefined> {
  const [row] = await tx.query<{ seq: number }>(
    `WITH numbered AS (UPDATE runs SET last_seq = last_seq + 1 WHERE id = $2
       AND NOT EXISTS (SELECT 1 FROM run_events WHERE run_id = $2 AND key = $3) RETURNING last_seq)
     INSERT INTO run_events (tenant_id, run_id, seq, key, type, step, name, output, error)
     SELECT $1, $2, last_seq, $3, $4, $5, $6, $7::jsonb, $8::jsonb FROM numbered RETURNING seq`,
    [event.tenantId, event.runId, event.key, event.type, event.step ?? null, event.name ?? null, json(event.output), json(event.error ?? null)],
  );
  return row?.seq;
}

export function eventsAfter(tx: Transaction, runId: string, afterSeq: number, limit: number): Promise<RunEvent[]> {
  return tx.query<RunEvent>(`SELECT ${EVENT} FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [runId, afterSeq, limit]);
}
