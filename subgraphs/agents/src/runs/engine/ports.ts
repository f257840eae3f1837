/** What the interpreter needs from around it: durable execution, the calls it makes, a record of what it did. */
import type { RunError } from '../store.ts';

export interface Usage {
  model: string | null;
  promptTokens: number;
  completionTokens: number;
  cost: number;
}

export interface CallResult {
  output: unknown;
  usage?: Usage | undefined;
}

/** One fork branch, as data: what a child run of the engine needs to run it. */
export interface Branch {
  name: string;
  task: Record<string, unknown>;
  at: (string | number)[];
  input: unknown;
  scope: Scope;
  context: unknown;
}

export interface Scope {
  /** Loop indices and retry attempts on the way here, so each time a task runs is its own step. */
  iteration: string;
  /** Variables in scope: `$item`, `$index`, a catch's `$error`, … */
  vars: Record<string, unknown>;
}

export interface StepOptions {
  timeoutMs?: number | undefined;
  /** What the step does, for metrics and traces: call:jarvis.model, tool:mcp, … */
  kind?: string | undefined;
}

/** Durable execution: each step checkpointed, waits and sleeps that survive a restart. */
export interface DurableHost {
  /** Runs `work` once per key across restarts: a completed step's result (or error) is returned again, not rerun. */
  step<T>(key: string, work: (signal: AbortSignal) => Promise<T>, options?: StepOptions): Promise<T>;
  sleep(ms: number): Promise<void>;
  /** The message sent to `topic`, or null after `timeoutMs` (null: wait for ever). */
  receive<T>(topic: string, timeoutMs: number | null): Promise<T | null>;
  /** The time, recorded the first time so a replay sees the same. */
  now(): Promise<number>;
  /** Runs the branches at once, each durably on its own; their outputs in order, or the first one's when `compete`. */
  branches(key: string, branches: Branch[], compete: boolean): Promise<unknown>;
}

export interface CallMeta {
  key: string;
  path: string;
  signal: AbortSignal;
}

/** The calls a workflow makes: Jarvis's own (search, model, mcp), http, and sub-workflows. */
export interface Calls {
  call(name: string, args: Record<string, unknown>, meta: CallMeta): Promise<CallResult>;
  /** A workflow of the tenant, by name, at a label or version number: its document. */
  loadWorkflow(name: string, version: string | undefined): Promise<Record<string, unknown>>;
}

/** An agent's loop, inside the run (each model and tool call a step of its own). */
export interface AgentRunner {
  run(args: Record<string, unknown>, meta: { key: string; path: string }): Promise<CallResult>;
}

export interface StepRecord {
  key: string;
  name: string;
  path: string;
  kind: string;
  input: unknown;
}

/** What callers see of the run: its steps and events. Every method is idempotent by key, as replays call them again. */
export interface Recorder {
  /** The step's number, new or as recorded before. */
  stepStarted(step: StepRecord): Promise<number>;
  stepFinished(key: string, output: unknown, usage?: Usage): Promise<void>;
  stepFailed(key: string, error: RunError): Promise<void>;
  waiting(key: string, approval: { topic: string; expiresAt: string | null }): Promise<void>;
  decided(key: string, decision: ApprovalDecision): Promise<void>;
}

export interface ApprovalDecision {
  approved: boolean;
  comment: string | null;
  by: string | null;
  at: string;
}
