import type { z } from 'zod';
import { parseInput } from './validation.ts';

/**
 * An input as GraphQL typed it, with what its schema cannot say (lengths, ranges, formats) checked by `checks`
 * and applied (trimmed, lower-cased, defaulted): the fields `checks` names come from the check, the others as
 * they were. The first problem is BAD_USER_INPUT naming the field, as with `parseInput`.
 */
export function checkInput<T extends object, S extends z.ZodType<object>>(checks: S, input: T): Omit<T, keyof z.output<S>> & z.output<S> {
  return { ...input, ...parseInput(checks, input) };
}
