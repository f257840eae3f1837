import { GraphQLError } from 'graphql';

/** The stable `extensions.code` values clients may rely on. */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  RATE_LIMITED: 'RATE_LIMITED',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  /** A persisted document's hash that the gateway's manifest of trusted documents does not hold. */
  PERSISTED_QUERY_NOT_IN_LIST: 'PERSISTED_QUERY_NOT_IN_LIST',
  /** Document text sent to a gateway that runs trusted documents only. */
  QUERY_NOT_IN_SAFELIST: 'QUERY_NOT_IN_SAFELIST',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error meant for the client: its message and code are safe to show. Anything else is masked. */
export class AppError extends GraphQLError {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { ...extensions, code } });
    this.code = code;
  }
}

export const badUserInput = (message: string, field?: string) =>
  new AppError(ErrorCode.BAD_USER_INPUT, message, field ? { field } : {});
export const unauthenticated = (message: string) => new AppError(ErrorCode.UNAUTHENTICATED, message);
export const forbidden = (message: string) => new AppError(ErrorCode.FORBIDDEN, message);
/** Refused for now: `retryAfter` (whole seconds, at least 1) says when trying again can succeed. */
export const rateLimited = (message: string, retryAfterMs: number, code: 'RATE_LIMITED' | 'QUOTA_EXCEEDED' = ErrorCode.RATE_LIMITED) =>
  new AppError(code, message, { retryAfter: Math.max(1, Math.ceil(retryAfterMs / 1000)) });
export const notFound = (message: string) => new AppError(ErrorCode.NOT_FOUND, message);
export const conflict = (message: string, field?: string) =>
  new AppError(ErrorCode.CONFLICT, message, field ? { field } : {});

/** The body of a response refused before GraphQL execution: one error with its stable code. */
export function errorBody(message: string, code: string) {
  return { errors: [{ message, extensions: { code } }] };
}

/**
 * Keeps errors a client may see (ours, and GraphQL's own parse/validation errors) and replaces anything
 * unexpected — a driver error carrying SQL, a TypeError — with an opaque internal error.
 */
export function isSafeForClient(error: GraphQLError): boolean {
  const cause = error.originalError;
  if (!cause) return true;
  if (cause instanceof AppError) return true;
  if (cause instanceof GraphQLError) return isSafeForClient(cause);
  return false;
}

export function maskError(error: GraphQLError): GraphQLError {
  if (isSafeForClient(error)) return error;
  return new GraphQLError('Internal server error', {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
  });
}

/** An error's stable code (`extensions.code`), or UNCLASSIFIED for one without: what metrics count it by. */
export function errorCodeOf(error: { extensions?: Record<string, unknown> | undefined }): string {
  const code = error.extensions?.code;
  return typeof code === 'string' ? code : 'UNCLASSIFIED';
}
