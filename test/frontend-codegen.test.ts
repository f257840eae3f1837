/**
 * What `npm run codegen` makes, and what it makes it from. The frontend's documents: every client document in schema/operations parses
 * and validates against the API schema clients see (schema/api.graphql), every operation is named and no two
 * share a name; the typed documents and persisted-documents manifest committed under web/src/gql are what
 * `npm run codegen` generates now (a stale or missing file fails: run `npm run codegen`); the manifest's keys are
 * the sha256 of the exact text stored for them, one entry per operation; and the console type-checks against
 * them (web/ has its own tsconfig: DOM, JSX, bundler resolution). The subgraphs' resolver types: each subgraph's
 * subgraphs/<name>/src/generated/schema-types.ts is what codegen generates from its SDL now, marked generated.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { generate } from '@graphql-codegen/cli';
import {
  buildSchema,
  Kind,
  parse,
  validate,
  visit,
  type DefinitionNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
} from 'graphql';
import { SUBGRAPHS } from '@jarvis/platform/config';
import config from '../codegen.ts';

const ROOT = resolve(import.meta.dirname, '..');
const OPERATIONS_DIR = join(ROOT, 'schema/operations');
const GENERATED_DIR = join(ROOT, 'web/src/gql');
const MANIFEST = join(GENERATED_DIR, 'persisted-documents.json');
const RUN_CODEGEN = 'run `npm run codegen`';

type Output = { filename: string; content: string };
let outputs: Promise<Output[]> | undefined;
/** What `npm run codegen` generates now, by absolute path; generated once for every test below. */
const generated = async () =>
  new Map((await (outputs ??= generate({ ...config, cwd: ROOT, silent: true }, false) as Promise<Output[]>)).map((o) => [resolve(ROOT, o.filename), o.content]));

/** Each generated file is present and as generated; none is left over in `dirs` that codegen no longer writes. */
function assertUpToDate(expected: Map<string, string>, dirs: string[]) {
  for (const [path, content] of expected) {
    const file = relative(ROOT, path);
    assert.ok(existsSync(path), `${file} is missing: ${RUN_CODEGEN}`);
    assert.ok(readFileSync(path, 'utf8') === content, `${file} is stale (it differs from what codegen generates): ${RUN_CODEGEN}`);
  }
  const leftovers = dirs.flatMap((dir) => (existsSync(dir) ? readdirSync(dir).map((name) => join(dir, name)) : [])).filter((path) => !expected.has(path));
  assert.deepEqual(leftovers.map((path) => relative(ROOT, path)), [], `codegen no longer writes these: delete them and ${RUN_CODEGEN}`);
}

const schema = buildSchema(readFileSync(join(ROOT, 'schema/api.graphql'), 'utf8'));

function graphqlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? graphqlFiles(join(dir, entry.name)) : entry.name.endsWith('.graphql') ? [join(dir, entry.name)] : []))
    .sort();
}

/** Each file of schema/operations, parsed (a file that does not parse fails with its name). */
function operationFiles(): { file: string; document: DocumentNode }[] {
  return graphqlFiles(OPERATIONS_DIR).map((path) => {
    const file = relative(ROOT, path);
    try {
      return { file, document: parse(readFileSync(path, 'utf8')) };
    } catch (error) {
      throw new Error(`${file} does not parse: ${(error as Error).message}`);
    }
  });
}

const isOperation = (definition: DefinitionNode): definition is OperationDefinitionNode => definition.kind === Kind.OPERATION_DEFINITION;
const isFragment = (definition: DefinitionNode): definition is FragmentDefinitionNode => definition.kind === Kind.FRAGMENT_DEFINITION;

/** The fragments `node` spreads, directly or through other fragments. */
function fragmentsUsed(node: OperationDefinitionNode | FragmentDefinitionNode, fragments: Map<string, FragmentDefinitionNode>, seen = new Set<string>()): Set<string> {
  visit(node, {
    FragmentSpread(spread) {
      const name = spread.name.value;
      if (seen.has(name)) return;
      seen.add(name);
      const fragment = fragments.get(name);
      if (fragment) fragmentsUsed(fragment, fragments, seen);
    },
  });
  return seen;
}

describe('client documents in schema/operations', () => {
  test('every document parses, every operation is named, and names are unique', () => {
    const files = operationFiles();
    assert.ok(files.length > 0, 'schema/operations holds the documents frontends use');
    const operations = new Map<string, string>();
    const fragments = new Map<string, string>();
    for (const { file, document } of files) {
      for (const definition of document.definitions) {
        assert.ok(isOperation(definition) || isFragment(definition), `${file}: only operations and fragments belong in a client document`);
        if (isOperation(definition)) {
          const name = definition.name?.value;
          assert.ok(name, `${file}: an anonymous ${definition.operation}; every operation needs a name`);
          assert.ok(!operations.has(name), `${file}: operation ${name} is also in ${operations.get(name)}`);
          operations.set(name, file);
        } else {
          const name = definition.name.value;
          assert.ok(!fragments.has(name), `${file}: fragment ${name} is also in ${fragments.get(name)}`);
          fragments.set(name, file);
        }
      }
    }
    for (const name of operations.keys()) assert.ok(!fragments.has(name), `${name} names both an operation and a fragment`);
  });

  test('every operation, with the fragments it uses, validates against schema/api.graphql', () => {
    const files = operationFiles();
    const fragments = new Map(files.flatMap(({ document }) => document.definitions.filter(isFragment).map((f) => [f.name.value, f] as const)));
    // All of them together: unknown fields or types, unused or unknown fragments, duplicate names…
    const all: DocumentNode = { kind: Kind.DOCUMENT, definitions: files.flatMap(({ document }) => document.definitions) };
    const errors = validate(schema, all).map((error) => error.message);
    assert.deepEqual(errors, [], 'the documents in schema/operations do not validate against schema/api.graphql');
    // …and each operation as a client sends it: alone with the fragments it spreads.
    for (const { file, document } of files) {
      for (const operation of document.definitions.filter(isOperation)) {
        const used = [...fragmentsUsed(operation, fragments)].map((name) => fragments.get(name)!);
        const alone: DocumentNode = { kind: Kind.DOCUMENT, definitions: [operation, ...used] };
        const messages = validate(schema, alone).map((error) => error.message);
        assert.deepEqual(messages, [], `${file}: operation ${operation.name?.value} does not validate against schema/api.graphql`);
      }
    }
  });
});

describe('generated typed documents in web/src/gql', () => {
  test('are what `npm run codegen` generates from the current documents and schema', async () => {
    const expected = new Map([...(await generated())].filter(([path]) => path.startsWith(`${GENERATED_DIR}/`)));
    assert.ok(expected.size > 0, 'codegen generated nothing');
    assert.ok(expected.has(MANIFEST), 'codegen writes web/src/gql/persisted-documents.json');
    assertUpToDate(expected, [GENERATED_DIR]);
  });

  test("the persisted-documents manifest maps the sha256 of each document's exact text to that text, one per operation", () => {
    const manifest = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Record<string, unknown>;
    const named = new Map<string, string>();
    for (const [hash, text] of Object.entries(manifest)) {
      assert.match(hash, /^[0-9a-f]{64}$/, 'keys are sha256 in lower-case hex');
      assert.equal(typeof text, 'string');
      assert.equal(createHash('sha256').update(text as string).digest('hex'), hash, `the key of ${JSON.stringify(text).slice(0, 80)}… is not the sha256 of its text`);
      const document = parse(text as string);
      assert.deepEqual(validate(schema, document).map((e) => e.message), [], `the manifest's document ${hash} does not validate`);
      const operations = document.definitions.filter(isOperation);
      assert.equal(operations.length, 1, `the manifest's document ${hash} holds one operation`);
      named.set(operations[0]!.name!.value, hash);
    }
    const operations = operationFiles().flatMap(({ document }) => document.definitions.filter(isOperation).map((o) => o.name!.value));
    assert.deepEqual([...named.keys()].sort(), operations.sort(), `every operation has its persisted document: ${RUN_CODEGEN}`);
    const generated = readFileSync(join(GENERATED_DIR, 'graphql.ts'), 'utf8');
    for (const [name, hash] of named) {
      assert.ok(generated.includes(`export const ${name}Document = {"__meta__":{"hash":"${hash}"}`), `${name}Document carries its hash: ${RUN_CODEGEN}`);
    }
  });
});

describe("each subgraph's resolver types, generated from its SDL", () => {
  const dirOf = (name: string) => join(ROOT, 'subgraphs', name, 'src/generated');

  test('are what `npm run codegen` generates from the current SDL, and say they are generated', async () => {
    const all = await generated();
    const expected = new Map([...all].filter(([path]) => SUBGRAPHS.some(({ name }) => path.startsWith(`${dirOf(name)}/`))));
    for (const { name } of SUBGRAPHS) {
      const file = join(dirOf(name), 'schema-types.ts');
      assert.ok(expected.has(file), `codegen writes ${relative(ROOT, file)}`);
      assert.match(expected.get(file)!, /^\/\/ Generated by `npm run codegen` from schema\/[a-z]+\.graphql/, `${relative(ROOT, file)} says it is generated`);
    }
    assertUpToDate(expected, SUBGRAPHS.map(({ name }) => dirOf(name)));
  });
});

describe('the web console', () => {
  test('type-checks against the generated documents (web/tsconfig.json and web/tsconfig.node.json)', () => {
    const tsc = join(ROOT, 'node_modules/.bin/tsc');
    for (const project of ['web/tsconfig.json', 'web/tsconfig.node.json']) {
      const result = spawnSync(tsc, ['-p', project], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(result.status, 0, `tsc -p ${project}:\n${result.stdout}${result.stderr}`);
    }
  });
});
