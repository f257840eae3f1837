/**
 * Checking a definition's YAML as it is typed (validateDefinition), and the problems a save was refused with.
 * validateDefinition is rate limited (30 a minute per caller), so the check waits until typing pauses, and a
 * text already checked — or known valid, as a saved version or the example is — is never sent again.
 */
import { useEffect, useRef, useState } from 'react';
import type { ApiErrorInfo } from '../api/errors';
import { useClient } from '../api/hooks';
import { ValidateDefinitionDocument, type DefinitionKind, type ValidateDefinitionQuery } from '../gql/graphql';

export type DefinitionProblem = NonNullable<ValidateDefinitionQuery['validateDefinition']>['problems'][number];

/** How long typing must pause before the text is checked. */
export const VALIDATE_AFTER_MS = 400;

export interface Validation {
  /** The problems of the text as it is now; while it is being checked, those of the text checked last. */
  problems: DefinitionProblem[];
  /** The text as it is now has been checked (or is known valid). */
  checked: boolean;
  /** A check is waiting for typing to pause, or for its answer. */
  checking: boolean;
  /** Why the last check could not be made (RATE_LIMITED, a network error…). */
  errors: ApiErrorInfo[];
}

const keyOf = (kind: DefinitionKind, source: string) => `${kind}\u0000${source}`;

/**
 * The problems of `source`, checked VALIDATE_AFTER_MS after it last changed. `knownValid` texts (the example, a
 * saved version) count as checked without a request; so does any text checked before.
 */
export function useValidation(kind: DefinitionKind, source: string, knownValid: readonly string[]): Validation {
  const client = useClient();
  const results = useRef(new Map<string, DefinitionProblem[]>());
  for (const text of knownValid) if (!results.current.has(keyOf(kind, text))) results.current.set(keyOf(kind, text), []);
  const [, setAnswered] = useState(0);
  const [pending, setPending] = useState<string | null>(null);
  const [errors, setErrors] = useState<ApiErrorInfo[]>([]);

  const key = keyOf(kind, source);
  const known = results.current.get(key);
  const shown = useRef<DefinitionProblem[]>([]);
  if (known) shown.current = known;

  useEffect(() => {
    if (results.current.has(key)) {
      setPending(null);
      return;
    }
    setPending(key);
    let current = true;
    const timer = setTimeout(async () => {
      try {
        const result = await client.request(ValidateDefinitionDocument, { kind, source });
        const validation = result.data?.validateDefinition;
        if (validation) results.current.set(key, validation.problems);
        if (current) setErrors(validation ? [] : (result.errors ?? [{ message: 'the definition could not be checked' }]));
      } catch (error) {
        if (current) setErrors([{ message: (error as Error).message, code: 'NETWORK_ERROR' }]);
      } finally {
        if (current) {
          setPending(null);
          setAnswered((n) => n + 1);
        }
      }
    }, VALIDATE_AFTER_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [client, key]); // eslint-disable-line react-hooks/exhaustive-deps

  return { problems: known ?? shown.current, checked: known !== undefined, checking: pending === key && !known, errors: known ? [] : errors };
}

/** The problems a refused save names (BAD_USER_INPUT): extensions.problems, else the first one's line and column. */
export function problemsFromErrors(errors: readonly ApiErrorInfo[]): DefinitionProblem[] {
  for (const error of errors) {
    const listed = error.extensions?.problems;
    if (Array.isArray(listed)) return listed.filter(isProblem);
    const { line, column, path } = error.extensions ?? {};
    if (typeof line === 'number' && typeof column === 'number') return [{ message: error.message, line, column, path: typeof path === 'string' ? path : '' }];
  }
  return [];
}

function isProblem(value: unknown): value is DefinitionProblem {
  if (!value || typeof value !== 'object') return false;
  const { message, line, column, path } = value as Record<string, unknown>;
  return typeof message === 'string' && typeof line === 'number' && typeof column === 'number' && typeof path === 'string';
}

/** "line L, column C — message (path)", as the editor lists a problem. */
export const describeProblem = (problem: DefinitionProblem): string =>
  `line ${problem.line}, column ${problem.column} — ${problem.message}${problem.path ? ` (${problem.path})` : ''}`;
