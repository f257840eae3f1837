/**
 * The Serverless Workflow SDK's own check of a workflow against the DSL 1.0.0 schema. The SDK reports problems
 * only inside the message of the error it throws — a line per JSON Schema error, `- <instance path> | <schema
 * path> | <message> | <params as JSON>` — so they are read back from there. A task is a union of twelve task
 * types (and a call a union of five calls), and the schema names every way each failed: knowing the task's type
 * from its keys, only the errors of that type are kept, and of those the deepest.
 */
import { createRequire } from 'node:module';
import { pointerOf, selfAndAncestors, type Finding } from './problems.ts';

interface SchemaError {
  pointer: string;
  message: string;
  params: Record<string, unknown>;
}

/**
 * The keys that make a task one type or another, each with the keys its type requires; `do` last, as `for` tasks
 * have one too.
 */
export const TASK_TYPES: Record<string, readonly string[]> = {
  call: ['call'],
  emit: ['emit'],
  for: ['for', 'do'],
  fork: ['fork'],
  listen: ['listen'],
  raise: ['raise'],
  run: ['run'],
  set: ['set'],
  switch: ['switch'],
  try: ['try', 'catch'],
  wait: ['wait'],
  do: ['do'],
};

type Sdk = typeof import('@serverlessworkflow/sdk');
let sdk: Sdk | undefined;
// Loaded on first use: loading the SDK compiles the DSL's whole schema (about half a second), which a subgraph's
// start need not wait for. Required, as the package is CommonJS (UMD) and its ESM build is not what Node loads.
const loadSdk = (): Sdk => (sdk ??= createRequire(import.meta.url)('@serverlessworkflow/sdk') as Sdk);

/** The SDK's findings for a workflow; `tasks` maps each task's pointer to its type, as the document shows it. */
export function schemaFindings(workflow: unknown, tasks: ReadonlyMap<string, string>): Finding[] {
  try {
    loadSdk().validate('Workflow', workflow);
    return [];
  } catch (error) {
    const errors = schemaErrors((error as Error).message);
    if (errors.length === 0) return [{ pointer: '', message: (error as Error).message }];
    return merged(deepest(errors.filter((e) => !isUnionNoise(e, tasks))).map(asFinding));
  }
}

const ERROR_LINE = /^- (\S*) \| \S+ \| (.*) \| (\{.*\})$/;

function schemaErrors(message: string): SchemaError[] {
  return message.split('\n').flatMap((line) => {
    const match = ERROR_LINE.exec(line);
    if (!match) return [];
    let params: Record<string, unknown> = {};
    try {
      params = JSON.parse(match[3]!) as Record<string, unknown>;
    } catch {
      // a message without its parameters is still a message
    }
    return [{ pointer: match[1]!, message: match[2]!, params }];
  });
}

/**
 * The errors of the union's other members: "must match exactly one schema in oneOf", a task's type's keys it does
 * not have (it is another type) or has (as its own type), and a call's name not being another call's.
 */
function isUnionNoise(error: SchemaError, tasks: ReadonlyMap<string, string>): boolean {
  if (/^must match (exactly one|a) schema in (oneOf|anyOf)$/.test(error.message)) return true;
  const type = tasks.get(error.pointer);
  const missing = error.params.missingProperty;
  if (type && typeof missing === 'string' && missing in TASK_TYPES) return !TASK_TYPES[type]!.includes(missing);
  // A `for` task's `do` is a do task's too: that union member finds the `for` beside it unexpected.
  if (type && TASK_TYPES[type]!.includes(String(error.params.unevaluatedProperty))) return true;
  const parent = error.pointer.replace(/\/call$/, '');
  return parent !== error.pointer && tasks.get(parent) === 'call' && ['must be equal to constant', 'must NOT be valid'].includes(error.message);
}

/** The errors no other error lies beneath: the most precise account of what is wrong where. */
function deepest(errors: SchemaError[]): SchemaError[] {
  const above = new Set(errors.flatMap((error) => selfAndAncestors(placeOf(error)).slice(1)));
  return errors.filter((error) => !above.has(placeOf(error)));
}

/** The property the schema does not know, for an error about one. */
function unknownProperty(error: SchemaError): string | undefined {
  const property = error.params.unevaluatedProperty ?? error.params.additionalProperty;
  return typeof property === 'string' ? property : undefined;
}

/** Where an error is: at the unknown property it names, or at its instance path. */
function placeOf(error: SchemaError): string {
  const property = unknownProperty(error);
  return property === undefined ? error.pointer : `${error.pointer}${pointerOf([property])}`;
}

function asFinding(error: SchemaError): Finding {
  const property = unknownProperty(error);
  if (property === undefined) return { pointer: error.pointer, message: error.message };
  return { pointer: placeOf(error), message: `unknown property '${property}'`, at: 'key' };
}

/** One finding per place: "must be string" and "must be object" at one place read "must be string or object". */
function merged(findings: Finding[]): Finding[] {
  const byPlace = new Map<string, { first: Finding; messages: Set<string> }>();
  for (const found of findings) {
    const place = byPlace.get(found.pointer);
    if (place) place.messages.add(found.message);
    else byPlace.set(found.pointer, { first: found, messages: new Set([found.message]) });
  }
  return [...byPlace.values()].map(({ first, messages }) => ({ ...first, message: oneMessage([...messages]) }));
}

function oneMessage(messages: string[]): string {
  const types = messages.map((message) => /^must be (\w+)$/.exec(message)?.[1]);
  if (types.every(Boolean)) return `must be ${types.join(' or ')}`;
  return messages.join('; ');
}
