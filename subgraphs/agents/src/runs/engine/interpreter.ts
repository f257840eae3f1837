/**
 * Runs a Serverless Workflow 1.0 document: its tasks in order with the DSL's flow (`then: continue | exit | end
 * | <task>`), data flow (`input.from`, `output.as`, `export.as`, `if`) and tasks (call, do, for, fork, listen,
 * raise, run, set, switch, try, wait). What touches the world or the clock goes through the durable host, so a
 * replay after a crash takes each completed step's result from its checkpoint; everything else is a pure function
 * of those results, so it takes the same path again. Each time a task runs is a step of the run, keyed by where
 * it is and the loop indices and retry attempts on the way there.
 */
import type { ExpressionEvaluator } from '../expressions.ts';
import { isRuntimeExpression } from '../expressions.ts';
import { durationMs, timeoutMs } from './durations.ts';
import { ERROR_TYPES, expressionError, runtimeError, timeoutError, WorkflowError } from './errors.ts';
import type { AgentRunner, ApprovalDecision, Branch, Calls, CallResult, DurableHost, Recorder, Scope } from './ports.ts';

type Data = Record<string, unknown>;
type Flow = string;
interface Outcome {
  output: unknown;
  flow: Flow;
}

export interface InterpreterDeps {
  host: DurableHost;
  calls: Calls;
  agents: AgentRunner;
  recorder: Recorder;
  expressions: ExpressionEvaluator;
  runId: string;
  /** The most steps a run may take: a `then` that jumps back cannot loop for ever. */
  maxSteps: number;
  /** When the run must have ended (epoch ms), from the workflow's `timeout`. */
  deadline?: number | undefined;
}

const isData = (value: unknown): value is Data => typeof value === 'object' && value !== null && !Array.isArray(value);
const pointer = (at: readonly (string | number)[]) => at.map((part) => `/${String(part).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
const truthy = (value: unknown) => value !== false && value !== null && value !== undefined;
// `do` last: a `for` task has one too.
const TASK_TYPES = ['call', 'for', 'fork', 'listen', 'raise', 'run', 'set', 'switch', 'try', 'wait', 'emit', 'do'] as const;
type TaskType = (typeof TASK_TYPES)[number];

export const APPROVAL_TOPIC_PREFIX = 'approval:';

export class Interpreter {
  /** `$context`: what tasks export (`export.as`). */
  private context: unknown;

  constructor(
    private readonly document: Data,
    private readonly deps: InterpreterDeps,
    context: unknown = {},
  ) {
    this.context = context;
  }

  async run(input: unknown): Promise<unknown> {
    const declaredInput = isData(this.document.input) ? this.document.input : {};
    const data = declaredInput.from === undefined ? input : await this.evaluate(declaredInput.from, input, { iteration: '', vars: {} });
    const outcome = await this.list(this.document.do, ['do'], data, { iteration: '', vars: {} });
    const declaredOutput = isData(this.document.output) ? this.document.output : {};
    return declaredOutput.as === undefined ? outcome.output : this.evaluate(declaredOutput.as, outcome.output, { iteration: '', vars: {} });
  }

  /** One fork branch, in a child run of the engine. */
  async branch(branch: Branch): Promise<unknown> {
    return (await this.task(branch.name, branch.task, branch.at, branch.input, branch.scope)).output;
  }

  private async list(tasks: unknown, at: (string | number)[], input: unknown, scope: Scope): Promise<Outcome> {
    const entries = Array.isArray(tasks) ? tasks.map((item) => Object.entries(item as Data)[0]!) : [];
    const visits = new Map<number, number>();
    let data = input;
    for (let index = 0; index < entries.length; ) {
      const [name, task] = entries[index]!;
      const visit = (visits.get(index) ?? 0) + 1;
      visits.set(index, visit);
      const outcome = await this.task(name, task as Data, [...at, index, name], data, visit > 1 ? { ...scope, iteration: `${scope.iteration}#${visit}` } : scope);
      data = outcome.output;
      if (outcome.flow === 'end') return outcome;
      if (outcome.flow === 'exit') break;
      if (outcome.flow === 'continue') index += 1;
      else {
        index = entries.findIndex(([other]) => other === outcome.flow);
        if (index < 0) throw runtimeError(`then: ${outcome.flow} names no task of this list`, 'BAD_FLOW');
      }
    }
    return { output: data, flow: 'continue' };
  }

  private async task(name: string, task: Data, at: (string | number)[], rawInput: unknown, scope: Scope): Promise<Outcome> {
    const path = pointer(at);
    const key = path + scope.iteration;
    const declaredInput = isData(task.input) ? task.input : {};
    const input = declaredInput.from === undefined ? rawInput : await this.evaluate(declaredInput.from, rawInput, scope, name);
    if (task.if !== undefined && !truthy(await this.evaluate(task.if, input, scope, name))) return { output: rawInput, flow: 'continue' };
    const type = TASK_TYPES.find((candidate) => candidate in task) ?? 'do';
    const kind = type === 'call' ? `call:${String(task.call)}` : type;
    await this.checkDeadline();
    const number = await this.deps.recorder.stepStarted({ key, name, path, kind, input });
    if (number > this.deps.maxSteps) throw runtimeError(`the run took more than ${this.deps.maxSteps} steps`, 'STEP_LIMIT');
    try {
      const { output: raw, flow, usage } = await this.execute(type, { name, task, at, key, path, input, scope });
      const declaredOutput = isData(task.output) ? task.output : {};
      const output = declaredOutput.as === undefined ? raw : await this.evaluate(declaredOutput.as, raw, scope, name);
      const declaredExport = isData(task.export) ? task.export : {};
      if (declaredExport.as !== undefined) this.context = await this.evaluate(declaredExport.as, output, scope, name);
      await this.deps.recorder.stepFinished(key, output, usage);
      return { output, flow: flow ?? (typeof task.then === 'string' ? task.then : 'continue') };
    } catch (error) {
      const failure = WorkflowError.from(error);
      if (failure) {
        failure.instance ??= path;
        await this.deps.recorder.stepFailed(key, { code: failure.code, message: failure.message, path: failure.instance });
      }
      throw error;
    }
  }

  private async execute(type: TaskType, at: At): Promise<{ output: unknown; flow?: Flow | undefined; usage?: CallResult['usage'] }> {
    const { task, input, scope } = at;
    switch (type) {
      case 'set':
        return { output: await this.deps.expressions.resolve(task.set, input, this.variables(input, scope, at.name)) };
      case 'switch':
        return { output: input, flow: await this.switchFlow(task.switch, input, scope, at.name) };
      case 'do': {
        const outcome = await this.list(task.do, [...at.at, 'do'], input, scope);
        return { output: outcome.output, flow: outcome.flow === 'end' ? 'end' : undefined };
      }
      case 'for':
        return this.forEach(at);
      case 'fork':
        return { output: await this.fork(at) };
      case 'try':
        return this.tryCatch(at);
      case 'raise':
        throw await this.raised(at);
      case 'wait':
        await this.deps.host.sleep(this.capped(durationMs(task.wait) ?? 0));
        return { output: input };
      case 'listen':
        return { output: await this.listen(at) };
      case 'call':
        return this.call(at);
      case 'run':
        return { output: await this.subWorkflow(at) };
      case 'emit':
        throw runtimeError('Jarvis does not emit events: call http or jarvis.mcp instead', 'UNSUPPORTED_TASK');
    }
  }

  private async switchFlow(cases: unknown, input: unknown, scope: Scope, name: string): Promise<Flow> {
    for (const item of Array.isArray(cases) ? cases : []) {
      const [, branch] = Object.entries(item as Data)[0]!;
      const { when, then } = branch as { when?: unknown; then?: string };
      if (when === undefined || truthy(await this.evaluate(when, input, scope, name))) return then ?? 'continue';
    }
    return 'continue';
  }

  private async forEach({ task, at, input, scope, name }: At): Promise<{ output: unknown; flow?: Flow }> {
    const loop = task.for as { each?: string; in: unknown; at?: string };
    const items = await this.evaluate(loop.in, input, scope, name);
    if (!Array.isArray(items)) throw expressionError(`for.in must give a list, not ${items === null ? 'null' : typeof items}`);
    let data = input;
    for (const [index, item] of items.entries()) {
      const iteration: Scope = { iteration: `${scope.iteration}.${index}`, vars: { ...scope.vars, [loop.each ?? 'item']: item, [loop.at ?? 'index']: index } };
      if (task.while !== undefined && !truthy(await this.evaluate(task.while, data, iteration, name))) break;
      const outcome = await this.list(task.do, [...at, 'do'], data, iteration);
      data = outcome.output;
      if (outcome.flow === 'end') return { output: data, flow: 'end' };
    }
    return { output: data };
  }

  private fork({ task, at, key, input, scope }: At): Promise<unknown> {
    const fork = task.fork as { branches: Data[]; compete?: boolean };
    const branches: Branch[] = fork.branches.map((item, index) => {
      const [name, branchTask] = Object.entries(item)[0]!;
      return { name, task: branchTask as Data, at: [...at, 'fork', 'branches', index, name], input, scope, context: this.context };
    });
    return this.deps.host.branches(key, branches, fork.compete === true);
  }

  private async tryCatch({ task, at, input, scope, name }: At): Promise<{ output: unknown; flow?: Flow }> {
    const handler = (isData(task.catch) ? task.catch : {}) as CatchDeclaration;
    for (let attempt = 0; ; attempt += 1) {
      try {
        const outcome = await this.list(task.try, [...at, 'try'], input, attempt ? { ...scope, iteration: `${scope.iteration}~${attempt}` } : scope);
        return { output: outcome.output, flow: outcome.flow === 'end' ? 'end' : undefined };
      } catch (error) {
        const failure = WorkflowError.from(error);
        if (!failure || !(await this.catches(handler, failure, scope, name))) throw error;
        const delay = retryDelay(handler.retry, attempt);
        if (delay !== undefined) {
          await this.deps.host.sleep(this.capped(delay));
          continue;
        }
        if (!handler.do) return { output: input };
        const caught: Scope = { ...scope, vars: { ...scope.vars, [handler.as ?? 'error']: failure.toJSON() } };
        const outcome = await this.list(handler.do, [...at, 'catch', 'do'], input, caught);
        return { output: outcome.output, flow: outcome.flow === 'end' ? 'end' : undefined };
      }
    }
  }

  private async catches(handler: CatchDeclaration, failure: WorkflowError, scope: Scope, name: string): Promise<boolean> {
    const filter = handler.errors?.with ?? {};
    const error = failure.toJSON();
    for (const [field, expected] of Object.entries(filter)) {
      if (expected !== undefined && (error as unknown as Record<string, unknown>)[field] !== expected) return false;
    }
    const withError: Scope = { ...scope, vars: { ...scope.vars, [handler.as ?? 'error']: error } };
    if (handler.when !== undefined && !truthy(await this.evaluate(handler.when, error, withError, name))) return false;
    if (handler.exceptWhen !== undefined && truthy(await this.evaluate(handler.exceptWhen, error, withError, name))) return false;
    return true;
  }

  private async raised({ task, input, scope, name, path }: At): Promise<WorkflowError> {
    const declared = (task.raise as { error: unknown }).error;
    const named = typeof declared === 'string' && isData(this.document.use) && isData(this.document.use.errors) ? this.document.use.errors[declared] : declared;
    const error = (await this.deps.expressions.resolve(named, input, this.variables(input, scope, name))) as Partial<Record<string, unknown>>;
    const type = typeof error.type === 'string' ? error.type : ERROR_TYPES.runtime;
    const status = typeof error.status === 'number' ? error.status : 500;
    const title = typeof error.title === 'string' ? error.title : undefined;
    const detail = typeof error.detail === 'string' ? error.detail : undefined;
    return new WorkflowError({ type, status, title, detail, instance: typeof error.instance === 'string' ? error.instance : path }, 'RAISED');
  }

  private async listen({ task, key }: At): Promise<unknown> {
    const topic = `${APPROVAL_TOPIC_PREFIX}${key}`;
    const wait = timeoutMs(task.timeout);
    const limit = this.deps.deadline === undefined && wait === undefined ? null : this.capped(wait ?? Number.MAX_SAFE_INTEGER);
    const expiresAt = limit === null ? null : new Date((await this.deps.host.now()) + limit).toISOString();
    await this.deps.recorder.waiting(key, { topic, expiresAt });
    const decision = await this.deps.host.receive<ApprovalDecision>(topic, limit);
    if (!decision) throw timeoutError(`no approval came within ${Math.round((limit ?? 0) / 1000)} s`, 'APPROVAL_TIMEOUT');
    await this.deps.recorder.decided(key, decision);
    if (!decision.approved) {
      const detail = decision.comment ? `rejected: ${decision.comment}` : 'rejected';
      throw new WorkflowError({ type: ERROR_TYPES.authorization, status: 403, title: 'Approval rejected', detail }, 'APPROVAL_REJECTED');
    }
    return { type: 'jarvis.approval', data: decision };
  }

  private async call({ task, input, scope, key, path, name }: At): Promise<{ output: unknown; usage?: CallResult['usage'] }> {
    const functions = isData(this.document.use) && isData(this.document.use.functions) ? this.document.use.functions : {};
    const declared = functions[String(task.call)];
    const callee = isData(declared) ? String(declared.call) : String(task.call);
    const defaults = isData(declared) && isData(declared.with) ? declared.with : {};
    const args = (await this.deps.expressions.resolve({ ...defaults, ...(isData(task.with) ? task.with : {}) }, input, this.variables(input, scope, name))) as Data;
    if (callee === 'jarvis.agent') return this.deps.agents.run(args, { key, path });
    const limit = timeoutMs(task.timeout);
    return this.deps.host.step(key, (signal) => this.deps.calls.call(callee, args, { key, path, signal }), {
      timeoutMs: limit === undefined ? undefined : this.capped(limit),
      kind: `call:${callee}`,
    });
  }

  private async subWorkflow({ task, input, scope, key, name }: At): Promise<unknown> {
    const workflow = (task.run as { workflow?: { name: string; version?: string; input?: unknown } }).workflow;
    if (!workflow) throw runtimeError('Jarvis runs no containers, shells or scripts: run a workflow instead', 'UNSUPPORTED_TASK');
    const document = await this.deps.host.step(`${key}/load`, () => this.deps.calls.loadWorkflow(workflow.name, workflow.version));
    const childInput = workflow.input === undefined ? input : await this.deps.expressions.resolve(workflow.input, input, this.variables(input, scope, name));
    return nestedWorkflow(document, name, key, this.deps).run(childInput);
  }

  private variables(input: unknown, scope: Scope, taskName: string): Record<string, unknown> {
    const header = isData(this.document.document) ? this.document.document : {};
    return {
      ...scope.vars,
      context: this.context,
      input,
      workflow: { id: this.deps.runId, definition: { document: header } },
      runtime: { name: 'jarvis', version: '1' },
      task: { name: taskName },
    };
  }

  private async evaluate(expression: unknown, input: unknown, scope: Scope, taskName = ''): Promise<unknown> {
    if (!isRuntimeExpression(expression)) return expression;
    return this.deps.expressions.evaluate(expression, input, this.variables(input, scope, taskName)).catch((error: Error) => {
      throw expressionError(error.message);
    });
  }

  /** A wait no longer than the run has left. */
  private capped(ms: number): number {
    return this.deps.deadline === undefined ? ms : Math.max(0, Math.min(ms, this.deps.deadline - Date.now()));
  }

  private async checkDeadline(): Promise<void> {
    if (this.deps.deadline !== undefined && (await this.deps.host.now()) > this.deps.deadline) {
      throw timeoutError('the run took longer than its timeout', 'RUN_TIMEOUT');
    }
  }
}

interface At {
  name: string;
  task: Data;
  at: (string | number)[];
  key: string;
  path: string;
  input: unknown;
  scope: Scope;
}

interface CatchDeclaration {
  errors?: { with?: Record<string, unknown> };
  as?: string;
  when?: unknown;
  exceptWhen?: unknown;
  retry?: RetryDeclaration;
  do?: unknown;
}

interface RetryDeclaration {
  delay?: unknown;
  backoff?: { constant?: unknown; linear?: unknown; exponential?: unknown };
  limit?: { attempt?: { count?: number } };
}

/** How long to wait before retry number `attempt + 1`; undefined when no retry is left. */
export function retryDelay(retry: RetryDeclaration | undefined, attempt: number): number | undefined {
  if (!retry) return undefined;
  const count = retry.limit?.attempt?.count ?? 0;
  if (attempt >= count) return undefined;
  const delay = durationMs(retry.delay) ?? 1000;
  if (retry.backoff?.exponential !== undefined) return delay * 2 ** attempt;
  if (retry.backoff?.linear !== undefined) return delay * (attempt + 1);
  return delay;
}

/** A workflow run inside a run (a `run` task, an agent's workflow tool): its tasks under one named `do`, its steps recorded under `key`. */
export function nestedWorkflow(document: Data, name: string, key: string, deps: InterpreterDeps): Interpreter {
  return new Interpreter({ ...document, do: [{ [name]: { do: document.do } }] }, { ...deps, recorder: prefixedRecorder(deps.recorder, key) });
}

/** A sub-workflow's steps recorded under the task that runs it. */
function prefixedRecorder(recorder: Recorder, prefix: string): Recorder {
  return {
    stepStarted: (step) => recorder.stepStarted({ ...step, key: `${prefix}${step.key}`, path: `${prefix}${step.path}` }),
    stepFinished: (key, output, usage) => recorder.stepFinished(`${prefix}${key}`, output, usage),
    stepFailed: (key, error) => recorder.stepFailed(`${prefix}${key}`, { ...error, path: `${prefix}${error.path}` }),
    waiting: (key, approval) => recorder.waiting(`${prefix}${key}`, approval),
    decided: (key, decision) => recorder.decided(`${prefix}${key}`, decision),
  };
}
