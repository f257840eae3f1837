/** How definitions and labels are named: what agents and workflows refer to them by in their YAML. */
import { z } from 'zod';

export const definitionName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lower-case letters, digits and ._- (at most 64), starting with a letter or digit');

export const labelName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'lower-case letters, digits and ._- (at most 32), starting with a letter or digit');

/** The label publishing moves, and references follow, unless they name another. */
export const DEFAULT_LABEL = 'production';
