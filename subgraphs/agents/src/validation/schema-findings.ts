/** zod's account of what is wrong with part of a document, as findings at JSON Pointers into the whole. */
import type { z } from 'zod';
import { finding, type Finding } from './problems.ts';

export function zodFindings(error: z.ZodError, base: readonly PropertyKey[] = []): Finding[] {
  return error.issues.flatMap((issue) => {
    const at = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => finding([...at, key], `unknown property '${key}'`, 'key'));
    if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) return [finding(at, 'is required')];
    return [finding(at, issue.message)];
  });
}
