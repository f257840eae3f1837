/**
 * The model router when models fail before their first token: the next candidate answers, timeouts abort the
 * call, every failure is reported when none is left, and a circuit breaker skips a failing model until a trial succeeds.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '@jarvis/platform/testing';
import { AllModelsFailedError, CircuitOpenError, ContextWindowError, FirstTokenTimeoutError } from '../src/models/router.ts';
import { startFakeOpenAI } from './fake-openai.ts';
import { answer, answeredBy, remote, request, routerOf, run, textOf } from './models-router-fixtures.ts';

describe('model router', () => {
  test('a model answering HTTP 500 is passed over for the next candidate before anything is yielded', async () => {
    const fake = await startFakeOpenAI();
    fake.script('first', { kind: 'error', status: 500, message: 'model crashed' });
    fake.script('second', answer('second'));
    const router = routerOf([remote(fake, 'first', { quality: 5 }), remote(fake, 'second', { quality: 4 })]);

    const outcome = await run(router, request(), { strategy: 'QUALITY' });

    assert.equal(answeredBy(outcome), 'second');
    assert.equal(outcome.chunks.filter((chunk) => chunk.kind === 'model').length, 1);
    assert.equal(textOf(outcome), 'second says 25 days [1].');
    assert.deepEqual(fake.requests.map((r) => r.model), ['first', 'second']);
  });

  test('a model without a first token in time is aborted at the server and the next one answers', async () => {
    const fake = await startFakeOpenAI();
    fake.script('stuck-headers', { kind: 'hang', headers: true });
    fake.script('stuck-silent', { kind: 'hang' });
    fake.script('quick', answer('quick'));
    const router = routerOf(
      [remote(fake, 'stuck-headers', { quality: 5 }), remote(fake, 'stuck-silent', { quality: 4 }), remote(fake, 'quick', { quality: 1 })],
      { firstTokenTimeoutMs: 150 },
    );

    const started = performance.now();
    const outcome = await run(router, request(), { strategy: 'QUALITY' });
    const elapsed = performance.now() - started;

    assert.equal(answeredBy(outcome), 'quick');
    assert.equal(textOf(outcome), 'quick says 25 days [1].');
    assert.ok(elapsed >= 300 && elapsed < 3_000, `two timeouts of 150 ms (not the default 2 s) took ${elapsed} ms`);
    for (const name of ['stuck-headers', 'stuck-silent']) {
      const [stuck] = fake.requestsFor(name);
      await stuck!.closed;
      assert.equal(stuck!.aborted, true, `${name}'s request was cancelled`);
    }
  });

  test('when every candidate fails before its first token, the error lists each failure and nothing is yielded', async () => {
    const fake = await startFakeOpenAI();
    fake.script('broken', { kind: 'error', status: 503, message: 'overloaded' });
    fake.script('stuck', { kind: 'hang', headers: true });
    const router = routerOf(
      [remote(fake, 'broken', { quality: 5 }), remote(fake, 'stuck', { quality: 4 }), remote(fake, 'tiny', { quality: 3, contextWindow: 50 })],
      { firstTokenTimeoutMs: 100 },
    );

    const outcome = await run(router, request(), { strategy: 'QUALITY' });

    assert.deepEqual(outcome.chunks, []);
    assert.ok(outcome.error instanceof AllModelsFailedError);
    const { failures } = outcome.error;
    assert.deepEqual(failures.map((failure) => failure.model), ['broken', 'stuck', 'tiny']);
    assert.match(failures[0]!.error.message, /\(model broken\) failed: HTTP 503 overloaded$/);
    assert.ok(failures[1]!.error instanceof FirstTokenTimeoutError);
    assert.ok(failures[2]!.error instanceof ContextWindowError);
    assert.match(outcome.error.message, /^no model could answer: broken: .*HTTP 503 overloaded; stuck: no first token within 100 ms; tiny: context window of 50 tokens/);
    assert.equal(fake.requestsFor('tiny').length, 0, 'a model whose window is too small is not called');
  });

  test('the circuit opens after repeated failures, skips the model, half-opens after the cooldown and closes on success', async () => {
    const fake = await startFakeOpenAI();
    fake.script('flaky', { kind: 'error', status: 500, message: 'down' });
    fake.script('steady', answer('steady'));
    const router = routerOf([remote(fake, 'flaky', { quality: 5 }), remote(fake, 'steady', { quality: 1 })], {
      defaultStrategy: 'QUALITY',
      failureThreshold: 2,
      cooldownMs: 500,
    });
    const flaky = () => router.health().find((model) => model.name === 'flaky')!;

    assert.equal(answeredBy(await run(router)), 'steady');
    assert.deepEqual([flaky().circuit, flaky().consecutiveFailures], ['closed', 1]);
    assert.equal(answeredBy(await run(router)), 'steady');
    assert.deepEqual([flaky().circuit, flaky().consecutiveFailures], ['open', 2]);

    // Open: flaky is not called at all.
    assert.equal(answeredBy(await run(router)), 'steady');
    assert.equal(fake.requestsFor('flaky').length, 2);

    // Half-open after the cooldown: one trial; its failure opens the circuit again at once.
    await waitFor(() => flaky().circuit === 'half-open', 'the cooldown to pass');
    assert.equal(answeredBy(await run(router)), 'steady');
    assert.equal(fake.requestsFor('flaky').length, 3);
    assert.equal(flaky().circuit, 'open');
    assert.equal(answeredBy(await run(router)), 'steady');
    assert.equal(fake.requestsFor('flaky').length, 3);

    // Next cooldown: the model has recovered; the trial succeeds and closes the circuit.
    await waitFor(() => flaky().circuit === 'half-open', 'the next cooldown to pass');
    fake.script('flaky', answer('flaky'));
    assert.equal(answeredBy(await run(router)), 'flaky');
    assert.deepEqual([flaky().circuit, flaky().consecutiveFailures], ['closed', 0]);
    assert.equal(answeredBy(await run(router)), 'flaky');
  });

  test('a half-open circuit lets a single trial through; concurrent requests skip the model meanwhile', async () => {
    const fake = await startFakeOpenAI();
    fake.script('flaky', { kind: 'error', status: 500, message: 'down' });
    fake.script('steady', answer('steady'));
    const router = routerOf([remote(fake, 'flaky', { quality: 5 }), remote(fake, 'steady', { quality: 1 })], {
      defaultStrategy: 'QUALITY',
      failureThreshold: 1,
      cooldownMs: 200,
    });
    assert.equal(answeredBy(await run(router)), 'steady');
    assert.equal(router.health()[0]!.circuit, 'open');

    await waitFor(() => router.health()[0]!.circuit === 'half-open', 'the cooldown to pass');
    fake.script('flaky', { ...answer('flaky'), firstTokenDelayMs: 150 });
    const trialUnderWay = () => waitFor(() => fake.requestsFor('flaky').length === 2, 'the trial request');
    const [trial, other] = await Promise.all([run(router), trialUnderWay().then(() => run(router))]);

    assert.equal(answeredBy(trial), 'flaky');
    assert.equal(answeredBy(other), 'steady');
    assert.equal(fake.requestsFor('flaky').length, 2, 'one failure, one trial');
    assert.equal(router.health()[0]!.circuit, 'closed');
  });

  test('skipped open circuits are reported when no model is left', async () => {
    const fake = await startFakeOpenAI();
    fake.script('only', { kind: 'error', status: 500, message: 'down' });
    const router = routerOf([remote(fake, 'only')], { failureThreshold: 1, cooldownMs: 60_000 });

    await run(router);
    const outcome = await run(router);

    assert.ok(outcome.error instanceof AllModelsFailedError);
    assert.ok(outcome.error.failures[0]!.error instanceof CircuitOpenError);
    assert.match(outcome.error.message, /^no model could answer: only: circuit open after repeated failures \(trial in \d+ ms\)$/);
    assert.equal(fake.requests.length, 1);
  });
});
