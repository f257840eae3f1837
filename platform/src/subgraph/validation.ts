import type { z } from 'zod';
import { badUserInput } from '../errors.ts';

/** Validates client input; the first problem becomes a BAD_USER_INPUT error naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.');
  throw badUserInput(field ? `${field}: ${issue.message}` : issue.message, field || undefined);
}
