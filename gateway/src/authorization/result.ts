/** What an analysis does to the response: nulls where fields were left out, and the errors. */
import {
  GraphQLError,
  isListType,
  isNonNullType,
  type ExecutionResult,
  type GraphQLOutputType,
} from 'graphql';
import { type ErrorPath, type Step, TYPENAME_ALIAS } from './operation-filter.ts';
import type { Analysis } from './analysis.ts';

export function completeResult(result: ExecutionResult, analysis: Extract<Analysis, { kind: 'filtered' }>): ExecutionResult {
  let data = result.data;
  if (data) {
    if (analysis.nulls.some((path) => nullWhereAbsent(data as ResponseObject, path, 0))) data = null;
    else for (const path of analysis.typenames) forgetTypename(data, path, 0);
  }
  return { ...result, data, errors: [...(result.errors ?? []), ...unauthorizedErrors(analysis.unauthorized)] };
}

type ResponseObject = Record<string, unknown>;

export function unauthorizedErrors(paths: readonly ErrorPath[]): GraphQLError[] {
  return paths.map(
    (path) => new GraphQLError('Unauthorized field or type', { path, extensions: { code: 'UNAUTHORIZED_FIELD_OR_TYPE' } }),
  );
}

/**
 * Puts null at the path's last field in every object the path reaches (every list item on the way), unless a
 * selection that stayed still provides the key. Returns true when the null must replace `object` itself: a
 * non-null field became null.
 */
function nullWhereAbsent(object: ResponseObject, path: readonly Step[], at: number): boolean {
  const step = path[at]!;
  if (step.kind === 'type') return isOfType(object, step.names) && nullWhereAbsent(object, path, at + 1);
  if (at === path.length - 1) {
    if (step.key in object) return false;
    object[step.key] = null;
    return isNonNullType(step.type);
  }
  const value = object[step.key];
  if (value === null || value === undefined || !nullWhereAbsentIn(value, step.type, path, at + 1)) return false;
  object[step.key] = null;
  return isNonNullType(step.type);
}

function nullWhereAbsentIn(value: unknown, type: GraphQLOutputType, path: readonly Step[], at: number): boolean {
  const nullable = isNonNullType(type) ? type.ofType : type;
  if (!isListType(nullable)) return nullWhereAbsent(value as ResponseObject, path, at);
  const items = value as unknown[];
  for (let i = 0; i < items.length; i++) {
    if (items[i] === null || !nullWhereAbsentIn(items[i], nullable.ofType, path, at)) continue;
    items[i] = null;
    if (isNonNullType(nullable.ofType)) return true;
  }
  return false;
}

/** Without its type (a merged field whose copy carrying it was removed), no null is added: never a wrong one. */
function isOfType(object: ResponseObject, names: ReadonlySet<string>): boolean {
  const typename = object[TYPENAME_ALIAS];
  return typeof typename === 'string' && names.has(typename);
}

function forgetTypename(value: unknown, path: readonly Step[], at: number): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) return value.forEach((item) => forgetTypename(item, path, at));
  const object = value as ResponseObject;
  const step = path[at];
  if (!step) delete object[TYPENAME_ALIAS];
  else if (step.kind === 'type') forgetTypename(object, path, at + 1);
  else forgetTypename(object[step.key], path, at + 1);
}
