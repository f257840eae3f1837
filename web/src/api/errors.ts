/** Errors as the console shows them: a message and, where there is one, a stable `extensions.code`. */

export interface ApiErrorInfo {
  message: string;
  /** `extensions.code` of a GraphQL error, an OAuth `error`, `HTTP_<status>` or `WEBSOCKET_<close code>`. */
  code?: string;
  path?: readonly (string | number)[];
  extensions?: Record<string, unknown>;
}

export class ApiError extends Error {
  readonly errors: ApiErrorInfo[];
  constructor(errors: ApiErrorInfo[]) {
    super(errors.map((error) => error.message).join('; '));
    this.errors = errors;
  }
}

interface GraphQLErrorLike {
  message?: unknown;
  path?: unknown;
  extensions?: unknown;
}

/** A GraphQL response's errors (or anything thrown) as ApiErrorInfo. */
export function toErrorInfos(error: unknown): ApiErrorInfo[] {
  if (error instanceof ApiError) return error.errors;
  if (Array.isArray(error)) return error.flatMap(toErrorInfos);
  if (isCloseEvent(error)) {
    return [{ message: `the connection closed (${error.code}${error.reason ? `: ${error.reason}` : ''})`, code: `WEBSOCKET_${error.code}` }];
  }
  if (error instanceof Error) return [{ message: error.message, code: error.name === 'TypeError' ? 'NETWORK_ERROR' : undefined }];
  if (error && typeof error === 'object') {
    const { message, path, extensions } = error as GraphQLErrorLike;
    const ext = extensions && typeof extensions === 'object' ? (extensions as Record<string, unknown>) : undefined;
    return [
      {
        message: typeof message === 'string' ? message : JSON.stringify(error),
        code: typeof ext?.code === 'string' ? ext.code : undefined,
        path: Array.isArray(path) ? (path as (string | number)[]) : undefined,
        extensions: ext,
      },
    ];
  }
  return [{ message: String(error) }];
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return !!value && typeof value === 'object' && 'code' in value && typeof (value as { code: unknown }).code === 'number' && 'reason' in value;
}
