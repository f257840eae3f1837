/** A workflow's input checked against its `input.schema` (JSON Schema) before a run starts. */
import { createRequire } from 'node:module';
import { badUserInput } from '@jarvis/platform/errors';
import type { ValidateFunction } from 'ajv';

type AjvClass = typeof import('ajv/dist/2020.js').default;
const Ajv2020 = createRequire(import.meta.url)('ajv/dist/2020.js') as AjvClass;
const ajv = new Ajv2020({ allErrors: false, strict: false, validateFormats: false });

/** Compiled schemas by version (`<definition id>/<number>`): versions never change. */
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 500;

export function checkRunInput(versionKey: string, document: Record<string, unknown>, input: unknown): void {
  const declared = document.input as { schema?: { document?: unknown } } | undefined;
  const schema = declared?.schema?.document ?? undefined;
  if (schema === undefined) return;
  let validate = compiled.get(versionKey);
  if (!validate) {
    try {
      validate = ajv.compile(schema as object);
    } catch (error) {
      throw badUserInput(`the workflow's input.schema is not a JSON Schema Jarvis can use: ${(error as Error).message}`);
    }
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(versionKey, validate);
  }
  if (validate(input ?? null)) return;
  const [first] = validate.errors ?? [];
  const path = `input${first?.instancePath ?? ''}`;
  throw badUserInput(`${path} ${first?.message ?? 'does not match the workflow input.schema'}`, path);
}
