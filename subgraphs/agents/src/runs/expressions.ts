/**
 * Runtime expressions of Serverless Workflow 1.0 (`${ … }`, jq) evaluated by real jq (jq-wasm) in a worker thread:
 * workflow authors are tenants, so a filter that never ends (`repeat(1)`) or eats memory must not stall or crash the
 * service. Evaluations run one at a time; one that takes too long has its worker terminated, and those queued
 * behind it go to a fresh worker.
 */
import { Worker } from 'node:worker_threads';

export class ExpressionError extends Error {
  override name = 'ExpressionError';
}

export interface ExpressionEvaluator {
  /** Evaluates one jq filter (the text inside `${ }`, or a whole `${ … }` string) on `input` with variables bound as $name. One output → that value; none → null; several → an array of them. */
  evaluate(expression: string, input: unknown, variables?: Record<string, unknown>): Promise<unknown>;
  /** Walks `value` (objects, arrays, strings): every string that is wholly a runtime expression `${ … }` is replaced by its result; everything else is kept as is. Objects' keys are kept. */
  resolve(value: unknown, input: unknown, variables?: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
}

export interface ExpressionEvaluatorOptions {
  /** Default 1000. */
  timeoutMs?: number;
  /** The output's JSON text; default 1 MiB. */
  maxOutputBytes?: number;
  /** The input's and variables' JSON text together; default 4 MiB. */
  maxInputBytes?: number;
}

const WORKER = new URL('./expressions-worker.mjs', import.meta.url);
const EXPRESSION = /^\s*\$\{([\s\S]*)\}\s*$/;
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isRuntimeExpression(value: unknown): value is string {
  return typeof value === 'string' && EXPRESSION.test(value);
}

interface Request {
  id: number;
  filter: string;
  input: string;
  variables?: { names: string[]; json: string };
  maxOutputBytes: number;
}
interface Reply {
  ready?: true;
  id?: number;
  outputs?: unknown[];
  error?: string;
}
interface Job {
  request: Request;
  resolve(outputs: unknown[]): void;
  reject(error: ExpressionError): void;
}

export function createExpressionEvaluator({
  timeoutMs = 1000,
  maxOutputBytes = 1024 * 1024,
  maxInputBytes = 4 * 1024 * 1024,
}: ExpressionEvaluatorOptions = {}): ExpressionEvaluator {
  const queue: Job[] = [];
  let worker: Worker | undefined;
  let ready = false;
  let current: { job: Job; timer: NodeJS.Timeout } | undefined;
  let closed = false;
  let nextId = 0;

  const spawn = (): Worker => {
    // No environment: jq's $ENV is Emscripten's made-up one anyway, this is in case that ever changes. No execArgv:
    // the worker is plain JavaScript, and inheriting tsx's loader would add ~150 ms to every start.
    const spawned = new Worker(WORKER, { env: {}, execArgv: [], resourceLimits: { maxOldGenerationSizeMb: 256 } });
    worker = spawned;
    ready = false;
    // Messages, errors and exits of a worker already given up (terminated after a timeout) are ignored.
    spawned.on('message', (reply: Reply) => {
      if (spawned !== worker) return;
      if (reply.ready) {
        ready = true;
        return pump();
      }
      if (!current || current.job.request.id !== reply.id) return;
      const { job, timer } = current;
      clearTimeout(timer);
      current = undefined;
      if (reply.error !== undefined) job.reject(new ExpressionError(reply.error));
      else job.resolve(reply.outputs ?? []);
      pump();
    });
    spawned.on('error', (error: Error & { code?: string }) => {
      if (spawned !== worker) return;
      if (!ready) return discard(`the expression evaluator could not start: ${error.message}`, queue.splice(0));
      discard(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'the expression used too much memory' : `the expression evaluator failed: ${error.message}`);
    });
    spawned.on('exit', () => spawned === worker && discard('the expression evaluator stopped'));
    return spawned;
  };

  /** Terminates the worker and fails the evaluation under way (and `more`); what is queued goes to a new worker. */
  const discard = (message: string, more: Job[] = []) => {
    const failed = current ? [current.job, ...more] : more;
    clearTimeout(current?.timer);
    current = undefined;
    void worker?.terminate();
    worker = undefined;
    for (const job of failed) job.reject(new ExpressionError(message));
    pump();
  };

  const pump = () => {
    if (closed || current) return;
    if (queue.length === 0) return void worker?.unref(); // an idle evaluator does not keep the process alive
    const active = worker ?? spawn();
    active.ref();
    if (!ready) return;
    const job = queue.shift()!;
    current = { job, timer: setTimeout(() => discard(`the expression took longer than ${timeoutMs} ms`), timeoutMs) };
    active.postMessage(job.request);
  };

  const evaluate = async (expression: string, input: unknown, variables: Record<string, unknown> = {}): Promise<unknown> => {
    if (closed) throw new ExpressionError('the expression evaluator is closed');
    const filter = (EXPRESSION.exec(expression)?.[1] ?? expression).trim() || '.';
    const names = Object.keys(variables);
    const invalid = names.find((name) => !VARIABLE.test(name) || name === '__loc__'); // $__loc__ is jq's own
    if (invalid !== undefined) throw new ExpressionError(`"${invalid}" is not a valid variable name`);
    const inputJson = toJson(input, 'the input');
    const variablesJson = names.length > 0 ? toJson(variables, 'the variables') : '';
    if (Buffer.byteLength(inputJson) + Buffer.byteLength(variablesJson) > maxInputBytes) {
      throw new ExpressionError(`the input and variables are larger than ${maxInputBytes} bytes`);
    }
    const request = {
      id: nextId++,
      filter,
      input: inputJson,
      variables: names.length > 0 ? { names, json: variablesJson } : undefined,
      maxOutputBytes,
    };
    const outputs = await new Promise<unknown[]>((resolve, reject) => {
      queue.push({ request, resolve, reject });
      pump();
    });
    return outputs.length === 0 ? null : outputs.length === 1 ? outputs[0] : outputs;
  };

  const resolve = async (value: unknown, input: unknown, variables?: Record<string, unknown>): Promise<unknown> => {
    if (isRuntimeExpression(value)) return evaluate(value, input, variables);
    if (Array.isArray(value)) return Promise.all(value.map((item) => resolve(item, input, variables)));
    if (isPlainObject(value)) {
      const entries = await Promise.all(Object.entries(value).map(async ([key, item]) => [key, await resolve(item, input, variables)] as const));
      return Object.fromEntries(entries);
    }
    return value;
  };

  return {
    evaluate,
    resolve,
    async close() {
      closed = true;
      const stopping = worker;
      worker = undefined;
      const failed = [...(current ? [current.job] : []), ...queue.splice(0)];
      clearTimeout(current?.timer);
      current = undefined;
      for (const job of failed) job.reject(new ExpressionError('the expression evaluator is closed'));
      await stopping?.terminate();
    },
  };
}

function toJson(value: unknown, what: string): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (error) {
    throw new ExpressionError(`${what} cannot be written as JSON: ${(error as Error).message}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
