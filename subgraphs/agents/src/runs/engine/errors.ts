/**
 * Errors as the DSL describes them (RFC 7807 problem details: type, status, title, detail, instance), plus
 * Jarvis's stable code for the run's `error.code`. `try`/`catch` matches on these fields.
 */
const SPEC_ERRORS = 'https://serverlessworkflow.io/spec/1.0.0/errors';

export const ERROR_TYPES = {
  configuration: `${SPEC_ERRORS}/configuration`,
  validation: `${SPEC_ERRORS}/validation`,
  expression: `${SPEC_ERRORS}/expression`,
  authentication: `${SPEC_ERRORS}/authentication`,
  authorization: `${SPEC_ERRORS}/authorization`,
  timeout: `${SPEC_ERRORS}/timeout`,
  communication: `${SPEC_ERRORS}/communication`,
  runtime: `${SPEC_ERRORS}/runtime`,
} as const;

export interface ErrorDetails {
  type: string;
  status: number;
  title?: string | undefined;
  detail?: string | undefined;
  /** A JSON Pointer to the task that raised it. */
  instance?: string | undefined;
}

export class WorkflowError extends Error {
  override name = 'WorkflowError';
  readonly type: string;
  readonly status: number;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  instance: string | undefined;

  constructor(
    details: ErrorDetails,
    /** Jarvis's stable code for it: QUOTA_EXCEEDED, STEP_TIMEOUT, APPROVAL_REJECTED, … */
    readonly code: string,
  ) {
    super(details.detail ?? details.title ?? code);
    this.type = details.type;
    this.status = details.status;
    this.title = details.title;
    this.detail = details.detail;
    this.instance = details.instance;
  }

  /** As the DSL hands an error to a `catch` (`$error`). */
  toJSON(): ErrorDetails & { code: string } {
    return { type: this.type, status: this.status, title: this.title, detail: this.detail, instance: this.instance, code: this.code };
  }

  /** The plain fields again after a checkpoint turned the error into data. */
  static from(value: unknown): WorkflowError | undefined {
    if (value instanceof WorkflowError) return value;
    const data = value as Partial<ReturnType<WorkflowError['toJSON']>> | null;
    if (!data || typeof data.type !== 'string' || typeof data.status !== 'number' || typeof data.code !== 'string') return undefined;
    return new WorkflowError({ type: data.type, status: data.status, title: data.title, detail: data.detail, instance: data.instance }, data.code);
  }
}

export const timeoutError = (what: string, code = 'STEP_TIMEOUT') =>
  new WorkflowError({ type: ERROR_TYPES.timeout, status: 408, title: 'Timed out', detail: what }, code);

export const runtimeError = (detail: string, code = 'RUNTIME_ERROR') => new WorkflowError({ type: ERROR_TYPES.runtime, status: 500, title: 'Runtime error', detail }, code);

export const expressionError = (detail: string) =>
  new WorkflowError({ type: ERROR_TYPES.expression, status: 400, title: 'Expression error', detail }, 'EXPRESSION_ERROR');
