import { z } from 'zod';

/** A runtime expression of the DSL, `${ … }` (jq), evaluated when the workflow runs. */
export const runtimeExpression = z.string().regex(/^\s*\$\{[\s\S]*\}\s*$/);

export const isRuntimeExpression = (value: unknown): boolean => runtimeExpression.safeParse(value).success;

/** A value of `schema`, or a runtime expression giving one when the workflow runs. */
export const orExpression = <T extends z.ZodType>(schema: T, what: string) =>
  z.custom<z.output<T> | string>((value) => isRuntimeExpression(value) || schema.safeParse(value).success, {
    error: `must be ${what}, or a runtime expression \${ … }`,
  });
