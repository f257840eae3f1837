/**
 * Runtime expressions through real jq in a worker: results, variables, resolve() over a task's arguments, jq's
 * errors, and what an untrusted expression cannot do: run forever, eat memory, flood the output, see the host's
 * environment, or wear the jq instance out.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createExpressionEvaluator, ExpressionError, isRuntimeExpression, type ExpressionEvaluator } from '../src/runs/expressions.ts';

const evaluator = createExpressionEvaluator();
after(() => evaluator.close());

/** Asserts that `promise` rejects with an ExpressionError whose message matches `message`. */
const refused = (promise: Promise<unknown>, message: RegExp) =>
  assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ExpressionError, `expected an ExpressionError, got ${String(error)}`);
    assert.equal(error.name, 'ExpressionError');
    assert.match(error.message, message);
    return true;
  });

/** Runs `use` with an evaluator of its own, closed afterwards. */
async function withEvaluator(options: Parameters<typeof createExpressionEvaluator>[0], use: (evaluator: ExpressionEvaluator) => Promise<void>) {
  const own = createExpressionEvaluator(options);
  try {
    await use(own);
  } finally {
    await own.close();
  }
}

test('a filter, bare or as a whole ${ … }, gives its one output', async () => {
  assert.equal(await evaluator.evaluate('"a" + .x', { x: 'b' }), 'ab');
  assert.equal(await evaluator.evaluate('  ${ "a" + .x }  ', { x: 'b' }), 'ab');
  assert.equal(await evaluator.evaluate('. + 1', 41), 42);
  assert.deepEqual(await evaluator.evaluate('[.[] * 2]', [1, 2]), [2, 4]);
});

test('variables are bound as $name, alongside definitions and the filter’s own variables', async () => {
  assert.equal(await evaluator.evaluate('${ $item.id }', {}, { item: { id: 7 } }), 7);
  const result = await evaluator.evaluate('def next: $item.id + $step; . as $input | [next, $input.a, $missing]', { a: 'x' }, { item: { id: 7 }, step: 2, missing: undefined });
  assert.deepEqual(result, [9, 'x', null]);
});

test('no output is null, several outputs are an array', async () => {
  assert.equal(await evaluator.evaluate('empty', { a: 1 }), null);
  assert.equal(await evaluator.evaluate('.a | select(. > 5)', { a: 1 }), null);
  assert.deepEqual(await evaluator.evaluate('.[]', [1, [2], 'line\nbreak']), [1, [2], 'line\nbreak']);
});

test('resolve() replaces whole expressions in nested objects and arrays, and keeps everything else', async () => {
  const when = new Date(0);
  const resolved = await evaluator.resolve(
    { query: '${ .ticket }', topK: 5, nested: ['${ .n + 1 }', 'not ${ .n }', { deeper: '${ $who }', when }], flag: true, none: null },
    { ticket: 'printer on fire', n: 1 },
    { who: 'ops' },
  );
  assert.deepEqual(resolved, { query: 'printer on fire', topK: 5, nested: [2, 'not ${ .n }', { deeper: 'ops', when }], flag: true, none: null });
  assert.equal(await evaluator.resolve('${ .n }', { n: 3 }), 3);
});

test('isRuntimeExpression knows a whole ${ … } from a string that merely contains one', () => {
  assert.equal(isRuntimeExpression(' ${ .a }\n'), true);
  assert.equal(isRuntimeExpression('a ${ .a }'), false);
  assert.equal(isRuntimeExpression(5), false);
});

test("jq's errors become ExpressionErrors in jq's words, without the wrapper's noise", async () => {
  await refused(evaluator.evaluate('.a +', {}), /^syntax error, unexpected end of file at <top-level>, line 1$/);
  await refused(evaluator.evaluate('.a +', {}, { x: 1 }), /^syntax error, unexpected end of file at <top-level>, line 1$/);
  await refused(evaluator.evaluate('error("boom")', {}), /^boom$/);
  await refused(evaluator.evaluate('{} + 1', {}), /^object \(\{\}\) and number \(1\) cannot be added$/);
  // jq-wasm's own wrapper returns the 1 and drops the error.
  await refused(evaluator.evaluate('1, error("after an output")', {}), /^after an output$/);
});

test('an expression that runs forever times out, and the next one gets a fresh worker', async () => {
  await withEvaluator({ timeoutMs: 300 }, async (own) => {
    const started = Date.now();
    await refused(own.evaluate('repeat(1)', {}), /took longer than 300 ms/);
    assert.ok(Date.now() - started < 2000);
    assert.equal(await own.evaluate('.a + 1', { a: 1 }), 2);
  });
});

test('an evaluation queued behind one that times out still answers', async () => {
  await withEvaluator({ timeoutMs: 300 }, async (own) => {
    const order: string[] = [];
    const slow = own.evaluate('last(range(1e12))', {}).finally(() => order.push('slow'));
    const fast = own.evaluate('.a + 1', { a: 1 }).finally(() => order.push('fast'));
    await refused(slow, /took longer than 300 ms/);
    assert.equal(await fast, 2);
    assert.deepEqual(order, ['slow', 'fast']);
  });
});

test('a memory bomb fails as an ExpressionError, by time or by jq running out of its heap, and the process lives on', async () => {
  await withEvaluator({ timeoutMs: 300 }, async (own) => {
    await refused(own.evaluate('[range(1e9)]', {}), /took longer than 300 ms/);
    assert.equal(await own.evaluate('.a + 1', { a: 1 }), 2);
  });
  await withEvaluator({ timeoutMs: 30_000 }, async (own) => {
    await refused(own.evaluate('[range(1e9)]', {}), /^cannot allocate memory$/);
    assert.equal(await own.evaluate('.a + 1', { a: 1 }), 2);
  });
  assert.ok(process.memoryUsage().rss < 1024 * 1024 * 1024);
});

test('output and input over their limits are refused', async () => {
  await withEvaluator({ maxOutputBytes: 1000, maxInputBytes: 2000 }, async (own) => {
    assert.equal(((await own.evaluate('"x" * 900', {})) as string).length, 900);
    await refused(own.evaluate('"x" * 2000', {}), /output is larger than 1000 bytes/);
    await refused(own.evaluate('repeat("x")', {}), /output is larger than 1000 bytes/);
    await refused(own.evaluate('.', { s: 'x'.repeat(2000) }), /larger than 2000 bytes/);
    await refused(own.evaluate('.', {}, { v: 'x'.repeat(2000) }), /larger than 2000 bytes/);
    assert.equal(await own.evaluate('.a + 1', { a: 1 }), 2);
  });
});

test('a large input is evaluated in linear time, not byte by byte', async () => {
  const input = { text: 'x'.repeat(3 * 1024 * 1024) };
  assert.equal(await evaluator.evaluate('.text | length', input), 3 * 1024 * 1024);
  assert.equal(await evaluator.evaluate('$doc.text | length', null, { doc: input }), 3 * 1024 * 1024);
});

test('hundreds of evaluations in a row stay correct (jq-wasm alone corrupts its stack after ~300)', async () => {
  for (let index = 0; index < 500; index++) assert.equal(await evaluator.evaluate('.a + $b', { a: index }, { b: 1 }), index + 1);
  await refused(evaluator.evaluate('.a +', {}), /^syntax error/);
});

test('variable names must be jq identifiers', async () => {
  await refused(evaluator.evaluate('.', {}, { 'bad-name': 1 }), /"bad-name" is not a valid variable name/);
  await refused(evaluator.evaluate('.', {}, { '1st': 1 }), /"1st" is not a valid variable name/);
  await refused(evaluator.evaluate('.', {}, { __loc__: 1 }), /"__loc__" is not a valid variable name/);
});

test("$ENV and env show jq's made-up environment, nothing of the host's", async () => {
  process.env.JARVIS_EXPRESSIONS_CANARY = `canary-${Math.random()}`;
  try {
    await withEvaluator({}, async (own) => {
      const fake = { USER: 'web_user', LOGNAME: 'web_user', PATH: '/', PWD: '/', HOME: '/home/web_user', LANG: 'C.UTF-8', _: 'jq' };
      assert.deepEqual(await own.evaluate('$ENV', {}), fake);
      assert.deepEqual(await own.evaluate('env', {}), fake);
      const shown = JSON.stringify(await own.evaluate('[$ENV, env, $__loc__, input_filename]', {}));
      assert.ok(!shown.includes(process.env.JARVIS_EXPRESSIONS_CANARY!));
      assert.ok(!shown.includes(process.cwd()));
      if (process.env.PATH) assert.ok(!shown.includes(process.env.PATH));
    });
  } finally {
    delete process.env.JARVIS_EXPRESSIONS_CANARY;
  }
});

test('after close(), evaluations are refused, and those in flight fail', async () => {
  const own = createExpressionEvaluator({ timeoutMs: 5000 });
  assert.equal(await own.evaluate('.', 1), 1);
  const inFlight = refused(own.evaluate('last(range(1e12))', {}), /closed/);
  await own.close();
  await inFlight;
  await refused(own.evaluate('.', 1), /closed/);
});
