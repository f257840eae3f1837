/**
 * The model router once a stream is under way: a failure after tokens is not retried, and an abort or a
 * consumer that stops reading cancels the model call without falling back or counting a failure.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '@jarvis/platform/testing';
import { StreamBrokenError, type RoutedChunk } from '../src/models/router.ts';
import { startFakeOpenAI } from './fake-openai.ts';
import { answer, remote, request, routerOf, run } from './models-router-fixtures.ts';

describe('model router', () => {
  test('a failure after tokens were sent is not retried: StreamBrokenError follows the tokens', async () => {
    const fake = await startFakeOpenAI();
    fake.script('breaks', { kind: 'break', tokens: ['one ', 'two ', 'three ', 'four '], after: 3 });
    fake.script('backup', answer('backup'));
    const router = routerOf([remote(fake, 'breaks', { quality: 5 }), remote(fake, 'backup', { quality: 1 })], { defaultStrategy: 'QUALITY' });

    const outcome = await run(router);

    assert.deepEqual(outcome.chunks, [
      { kind: 'model', name: 'breaks' },
      { kind: 'token', text: 'one ' },
      { kind: 'token', text: 'two ' },
      { kind: 'token', text: 'three ' },
    ]);
    assert.ok(outcome.error instanceof StreamBrokenError);
    assert.equal(outcome.error.model, 'breaks');
    assert.equal(outcome.error.tokensSent, 3);
    assert.match(outcome.error.message, /^model breaks failed after 3 tokens: .*connection was lost mid-stream/);
    assert.equal(fake.requestsFor('backup').length, 0);
    assert.equal(router.health()[0]!.consecutiveFailures, 1, 'a broken stream counts against the model');
  });

  test('aborting the request mid-stream cancels the model call, tries no other model and counts no failure', async () => {
    const fake = await startFakeOpenAI();
    fake.script('talker', { kind: 'answer', tokens: Array.from({ length: 40 }, (_, i) => `w${i} `), tokenDelayMs: 30 });
    fake.script('backup', answer('backup'));
    const router = routerOf([remote(fake, 'talker', { quality: 5 }), remote(fake, 'backup', { quality: 1 })], { defaultStrategy: 'QUALITY' });
    const controller = new AbortController();
    const chunks: RoutedChunk[] = [];

    await assert.rejects(
      (async () => {
        for await (const chunk of router.stream(request({ signal: controller.signal }))) {
          chunks.push(chunk);
          if (chunks.length === 3) controller.abort();
        }
      })(),
      (error: Error) => error.name === 'AbortError',
    );

    assert.deepEqual(chunks.slice(0, 3), [{ kind: 'model', name: 'talker' }, { kind: 'token', text: 'w0 ' }, { kind: 'token', text: 'w1 ' }]);
    const [talker] = fake.requestsFor('talker');
    await talker!.closed;
    assert.equal(talker!.aborted, true);
    assert.equal(fake.requestsFor('backup').length, 0);
    assert.equal(router.health()[0]!.consecutiveFailures, 0);
  });

  test('aborting while waiting for a first token stops at once without falling back', async () => {
    const fake = await startFakeOpenAI();
    fake.script('stuck', { kind: 'hang', headers: true });
    fake.script('backup', answer('backup'));
    const router = routerOf([remote(fake, 'stuck', { quality: 5 }), remote(fake, 'backup', { quality: 1 })], {
      defaultStrategy: 'QUALITY',
      firstTokenTimeoutMs: 5_000,
    });
    const controller = new AbortController();
    const reason = new Error('client went away');
    void waitFor(() => fake.requestsFor('stuck').length === 1, 'the stuck request').then(() => controller.abort(reason));

    const started = performance.now();
    const outcome = await run(router, request({ signal: controller.signal }));

    assert.equal(outcome.error, reason);
    assert.ok(performance.now() - started < 2_000);
    await fake.requestsFor('stuck')[0]!.closed;
    assert.equal(fake.requestsFor('stuck')[0]!.aborted, true);
    assert.equal(fake.requestsFor('backup').length, 0);
  });

  test('a consumer that stops reading cancels the upstream request', async () => {
    const fake = await startFakeOpenAI();
    fake.script('long', { kind: 'answer', tokens: Array.from({ length: 40 }, (_, i) => `w${i} `), tokenDelayMs: 30 });
    const router = routerOf([remote(fake, 'long')]);

    for await (const chunk of router.stream(request())) {
      if (chunk.kind === 'token') break;
    }

    const [long] = fake.requests;
    await long!.closed;
    assert.equal(long!.aborted, true);
    assert.deepEqual(router.health()[0], { name: 'long', circuit: 'closed', consecutiveFailures: 0, ttftMs: router.health()[0]!.ttftMs });
  });
});
