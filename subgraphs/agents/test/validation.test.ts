/**
 * Definitions' YAML checked for their kind, each problem placed on its line and column: YAML that cannot be read,
 * workflows the Serverless Workflow SDK refuses, what Jarvis does not run, Jarvis's calls with wrong arguments,
 * and agents; valid documents with what they declare; and the README's examples.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { checkSource, type Problem } from '../src/validation/index.ts';

const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');

/** A workflow whose document header takes lines 1–5, so its tasks start on line 6. */
const workflow = (tasks: string) => `document:\n  dsl: '1.0.0'\n  namespace: test\n  name: probe\n  version: '1.0.0'\n${tasks}`;
const problems = (kind: 'WORKFLOW' | 'AGENT', source: string) => checkSource(kind, source).problems;
const at = (problem: Problem | undefined) => problem && { path: problem.path, line: problem.line, column: problem.column };

describe('YAML that cannot be read', () => {
  test('a syntax error is placed on its line and column, the path empty', () => {
    const [problem, ...rest] = problems('WORKFLOW', "document:\n  dsl: '1.0.0'\n  name: [probe\nversion: 1\n");
    assert.deepEqual(at(problem), { path: '', line: 4, column: 1 });
    assert.match(problem!.message, /Flow sequence/);
    assert.deepEqual(rest, []);
  });

  test('a duplicate key, and several documents, are problems too', () => {
    assert.deepEqual(at(problems('AGENT', 'instructions: a\nmaxSteps: 1\ninstructions: b\n')[0]), { path: '', line: 3, column: 1 });
    assert.match(problems('AGENT', 'instructions: a\n---\ninstructions: b\n')[0]!.message, /multiple documents/);
  });

  test('an empty document, or one that is not a mapping, is named as such', () => {
    assert.deepEqual(problems('WORKFLOW', ''), [{ message: 'a workflow is a YAML mapping with a document header and the tasks to do', path: '', line: 1, column: 1 }]);
    assert.match(problems('AGENT', '- a list\n')[0]!.message, /an agent is a YAML mapping/);
  });
});

describe('workflows', () => {
  test('a workflow using switch, for, fork, try with retry, wait, set, raise, a declared function, Jarvis calls, http and listen is valid', () => {
    const checked = checkSource('WORKFLOW', fixture('ticket-triage.yaml'));
    assert.deepEqual(checked.problems, []);
    assert.deepEqual(checked.declared, {
      workflow: {
        dsl: '1.0.0',
        namespace: 'support',
        name: 'ticket-triage',
        version: '1.0.0',
        title: 'Ticket triage',
        summary: null,
        inputSchema: JSON.stringify({ type: 'object', required: ['ticket'], properties: { ticket: { type: 'string' } } }),
        outputSchema: JSON.stringify({ type: 'object' }),
        calls: ['jarvis.model', 'http', 'jarvis.agent', 'jarvis.mcp', 'jarvis.search'],
        listens: true,
      },
    });
    assert.deepEqual(checked.references, [{ kind: 'AGENT', name: 'support-agent', pointer: '/do/3/answer/do/0/gather/fork/branches/1/draft/with/agent' }]);
  });

  test("the SDK's refusal is placed at its path: a wrong value where it is, deepest first", () => {
    const found = problems('WORKFLOW', workflow('do:\n  - notify:\n      call: http\n      with:\n        method: post\n        endpoint: 12\n'));
    assert.deepEqual(found, [{ message: 'must be string or object', path: '/do/0/notify/with/endpoint', line: 11, column: 19 }]);
  });

  test('a retry policy the DSL does not allow is found inside the try task', () => {
    const source = fixture('ticket-triage.yaml').replace('count: 3', "count: 'three'");
    const [problem, ...rest] = problems('WORKFLOW', source);
    assert.equal(problem?.path, '/do/2/escalate/do/0/notify/catch/retry/limit/attempt/count');
    assert.equal(problem?.message, 'must be integer');
    assert.deepEqual([problem?.line, problem?.column], [source.split('\n').findIndex((line) => line.includes("count: 'three'")) + 1, 28]);
    assert.deepEqual(rest, []);
  });

  test('an unknown task type is named at the task, not as every task type it is not', () => {
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - first:\n      set: { a: 1 }\n  - second:\n      sleep: 5\n')), [
      { message: 'not a task: a task is one of call, do, emit, for, fork, listen, raise, run, set, switch, try, wait', path: '/do/1/second', line: 9, column: 5 },
    ]);
  });

  test('an unknown property is placed on its key', () => {
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - mark:\n      set: { a: 1 }\n      export_as: x\n')), [
      { message: "unknown property 'export_as'", path: '/do/0/mark/export_as', line: 9, column: 7 },
    ]);
  });

  test("a missing property of the task's own type is reported, the other types' keys are not", () => {
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - each:\n      for:\n        in: ${ .items }\n')), [
      { message: "must have required property 'do'", path: '/do/0/each', line: 7, column: 5 },
    ]);
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - each:\n      for:\n        each: item\n      do:\n        - a:\n            set: { a: 1 }\n')), [
      { message: "must have required property 'in'", path: '/do/0/each/for', line: 8, column: 7 },
    ]);
  });

  test('the DSL version must be 1.0.0, and the document header follows the DSL', () => {
    assert.deepEqual(problems('WORKFLOW', "document:\n  dsl: '0.8'\ndo: []\n"), [
      { message: "must be '1.0.0': Jarvis reads Serverless Workflow DSL 1.0.0", path: '/document/dsl', line: 2, column: 8 },
    ]);
    const [problem] = problems('WORKFLOW', workflow('do:\n  - a:\n      set: { a: 1 }\n').replace('name: probe', 'name: Not A Name'));
    assert.deepEqual(at(problem), { path: '/document/name', line: 4, column: 9 });
    assert.match(problem!.message, /must match pattern/);
  });

  test("Jarvis's calls take their own arguments: a missing one at the call, a wrong one where it is", () => {
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - look:\n      call: jarvis.search\n      with:\n        topK: 500\n        mode: FUZZY\n')), [
      { message: 'is required', path: '/do/0/look/with/query', line: 9, column: 7 },
      { message: 'must be a whole number from 1 to 50, or a runtime expression ${ … }', path: '/do/0/look/with/topK', line: 10, column: 15 },
      { message: 'must be LEXICAL, VECTOR or HYBRID, or a runtime expression ${ … }', path: '/do/0/look/with/mode', line: 11, column: 15 },
    ]);
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - tool:\n      call: jarvis.mcp\n      with:\n        server: ftp://mcp\n        tool: lookup\n        verbose: true\n')), [
      { message: 'must be an http(s) URL', path: '/do/0/tool/with/server', line: 10, column: 17 },
      { message: "unknown property 'verbose'", path: '/do/0/tool/with/verbose', line: 12, column: 9 },
    ]);
  });

  test('runtime expressions stand for any argument', () => {
    const source = workflow('do:\n  - look:\n      call: jarvis.search\n      with:\n        query: ${ .q }\n        topK: ${ .k }\n        knowledgeBases: ${ .kbs }\n');
    assert.deepEqual(problems('WORKFLOW', source), []);
  });

  test('a call to an unknown function, to a call Jarvis does not make, a run of anything but a workflow, or an emit is refused where it is', () => {
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - a:\n      call: jarvis.email\n')), [
      { message: "unknown function 'jarvis.email': call jarvis.search, jarvis.model, jarvis.agent, jarvis.mcp, http, or a function declared under use.functions", path: '/do/0/a/call', line: 8, column: 13 },
    ]);
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - a:\n      call: grpc\n      with:\n        proto: { endpoint: x }\n')), [
      { message: 'Jarvis does not make grpc calls: call jarvis.search, jarvis.model, jarvis.agent, jarvis.mcp, http', path: '/do/0/a/call', line: 8, column: 13 },
    ]);
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - a:\n      run:\n        shell:\n          command: rm -rf /\n')), [
      { message: "Jarvis runs no containers, shells or scripts: run one of the tenant's workflows (run.workflow) instead", path: '/do/0/a/run', line: 8, column: 7 },
    ]);
    assert.deepEqual(problems('WORKFLOW', workflow('do:\n  - a:\n      emit:\n        event:\n          with:\n            type: x\n')), [
      { message: 'Jarvis emits no events: call http or jarvis.mcp instead', path: '/do/0/a/emit', line: 8, column: 7 },
    ]);
    const sub = workflow("do:\n  - a:\n      run:\n        workflow:\n          namespace: hr\n          name: onboarding\n          version: production\n");
    assert.deepEqual(problems('WORKFLOW', sub), [], 'a sub-workflow is allowed');
    assert.deepEqual(checkSource('WORKFLOW', sub).references, [{ kind: 'WORKFLOW', name: 'onboarding', pointer: '/do/0/a/run/workflow/name' }], 'and must be one of the tenant\'s');
  });

  test('a function declared under use.functions may be called, and is checked as a task itself', () => {
    const declared = (args: string) => workflow(`use:\n  functions:\n    lookup:\n      call: jarvis.search\n      with:\n${args}do:\n  - a:\n      call: lookup\n`);
    assert.deepEqual(problems('WORKFLOW', declared('        query: ${ .q }\n')), []);
    assert.deepEqual(problems('WORKFLOW', declared('        topK: 3\n')), [{ message: 'is required', path: '/use/functions/lookup/with/query', line: 10, column: 7 }]);
  });
});

describe('agents', () => {
  const agent = (extra = '') => `instructions: Answer from the handbook.\nmodel: local-extractive\nmaxSteps: 5\ntokenBudget: 2000\n${extra}`;

  test('a valid agent declares its tools, defaults filled in, and names the workflows it uses', () => {
    const checked = checkSource('AGENT', agent('tools:\n  knowledgeBases: [3f2b9c1e-8a4d-4c6e-9b1a-2d7e5f0a6c31]\n  workflows:\n    - name: triage\n  http:\n    - url: https://api.example.com/rates\n'));
    assert.deepEqual(checked.problems, []);
    assert.deepEqual(checked.declared, {
      agent: {
        instructions: 'Answer from the handbook.',
        model: 'local-extractive',
        maxSteps: 5,
        tokenBudget: 2000,
        tools: {
          knowledgeBases: ['3f2b9c1e-8a4d-4c6e-9b1a-2d7e5f0a6c31'],
          workflows: [{ name: 'triage', label: 'production' }],
          mcp: [],
          http: [{ url: 'https://api.example.com/rates', methods: ['GET'] }],
        },
      },
    });
    assert.deepEqual(checked.references, [{ kind: 'WORKFLOW', name: 'triage', pointer: '/tools/workflows/0/name' }]);
  });

  test('every problem of an invalid agent, each where it is', () => {
    const source = 'instructions: Answer.\nstrategy: CHEAPEST\nmaxSteps: 0\ntools:\n  knowledgeBases: [handbook]\n  mcp:\n    - server: https://mcp.example.com\n      tools: []\n  shell: true\n';
    assert.deepEqual(problems('AGENT', source), [
      { message: 'is required', path: '/tokenBudget', line: 1, column: 1 },
      { message: 'Invalid option: expected one of "COST"|"LATENCY"|"QUALITY"', path: '/strategy', line: 2, column: 11 },
      { message: 'Too small: expected number to be >=1', path: '/maxSteps', line: 3, column: 11 },
      { message: 'must be a knowledge base id', path: '/tools/knowledgeBases/0', line: 5, column: 20 },
      { message: 'name at least one tool', path: '/tools/mcp/0/tools', line: 8, column: 7 },
      { message: "unknown property 'shell'", path: '/tools/shell', line: 9, column: 3 },
    ]);
  });

  test('a model or a routing strategy, not both and not neither', () => {
    assert.deepEqual(problems('AGENT', agent('strategy: COST\n')), [
      { message: 'name a model or a routing strategy (COST, LATENCY, QUALITY), not both', path: '/strategy', line: 5, column: 11 },
    ]);
    assert.equal(problems('AGENT', agent().replace('model: local-extractive\n', '')).length, 1);
  });
});

test("the README's example workflow and agent are valid", () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const examples = [...readme.matchAll(/```yaml\n# kind: (WORKFLOW|AGENT)[^\n]*\n([\s\S]*?)```/g)];
  assert.deepEqual(examples.map(([, kind]) => kind), ['WORKFLOW', 'AGENT']);
  for (const [, kind, source] of examples) assert.deepEqual(problems(kind as 'WORKFLOW' | 'AGENT', source!), [], kind);
});
