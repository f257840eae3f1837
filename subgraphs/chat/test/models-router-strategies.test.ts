/** The model router's order of candidates: by cost for the request, by quality, by measured latency, or named. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LocalAnswerer } from '../src/models/local-answerer.ts';
import type { ModelSpec } from '../src/models/registry.ts';
import { startFakeOpenAI } from './fake-openai.ts';
import { answer, answeredBy, remote, request, routerOf, run, textOf } from './models-router-fixtures.ts';

describe('model router', () => {
  test('COST tries the cheapest model for the request first and streams its answer after naming it', async () => {
    const fake = await startFakeOpenAI();
    for (const name of ['premium', 'budget', 'mid']) fake.script(name, answer(name));
    const router = routerOf([
      remote(fake, 'premium', { costPer1kPromptTokens: 0.01, costPer1kCompletionTokens: 0.03, quality: 5 }),
      remote(fake, 'budget', { costPer1kPromptTokens: 0.0005, costPer1kCompletionTokens: 0.0015, quality: 2 }),
      remote(fake, 'mid', { costPer1kPromptTokens: 0.003, costPer1kCompletionTokens: 0.006, quality: 4 }),
    ]);

    const outcome = await run(router, request(), { strategy: 'COST' });

    assert.deepEqual(outcome.chunks, [
      { kind: 'model', name: 'budget' },
      { kind: 'token', text: 'budget ' },
      { kind: 'token', text: 'says ' },
      { kind: 'token', text: '25 ' },
      { kind: 'token', text: 'days ' },
      { kind: 'token', text: '[1].' },
      { kind: 'usage', promptTokens: 17, completionTokens: 5 },
    ]);
    assert.deepEqual(fake.requests.map((r) => r.model), ['budget']);
    assert.deepEqual(router.order('COST').map((spec) => spec.name), ['budget', 'mid', 'premium']);
  });

  test('COST prices this request: a long prompt favours cheap prompt tokens, a long answer cheap completion tokens', async () => {
    const fake = await startFakeOpenAI();
    const router = routerOf([
      remote(fake, 'cheap-prompt', { costPer1kPromptTokens: 0.001, costPer1kCompletionTokens: 0.01 }),
      remote(fake, 'cheap-answer', { costPer1kPromptTokens: 0.004, costPer1kCompletionTokens: 0.002 }),
    ]);
    assert.deepEqual(router.order('COST', { promptTokens: 8_000, maxTokens: 200 }).map((spec) => spec.name), ['cheap-prompt', 'cheap-answer']);
    assert.deepEqual(router.order('COST', { promptTokens: 200, maxTokens: 4_000 }).map((spec) => spec.name), ['cheap-answer', 'cheap-prompt']);
  });

  test('the default strategy is the one given to the router; the local answerer is the cheapest and streams real text', async () => {
    const fake = await startFakeOpenAI();
    fake.script('hosted', answer('hosted'));
    const models = [remote(fake, 'hosted', { quality: 4 }), { spec: localSpec(), model: new LocalAnswerer() }];

    const cheapest = await run(routerOf(models, { defaultStrategy: 'COST' }));
    assert.equal(answeredBy(cheapest), 'local-extractive');
    assert.equal(textOf(cheapest), 'Employees get 25 days of paid leave per year. [1]');
    assert.equal(fake.requests.length, 0);

    const best = await run(routerOf(models, { defaultStrategy: 'QUALITY' }));
    assert.equal(answeredBy(best), 'hosted');
  });

  test('QUALITY tries the highest quality first, cost breaking ties', async () => {
    const fake = await startFakeOpenAI();
    for (const name of ['good', 'best-dear', 'best-cheap']) fake.script(name, answer(name));
    const router = routerOf([
      remote(fake, 'good', { quality: 4, costPer1kPromptTokens: 0 }),
      remote(fake, 'best-dear', { quality: 5, costPer1kPromptTokens: 0.02 }),
      remote(fake, 'best-cheap', { quality: 5, costPer1kPromptTokens: 0.01 }),
    ]);

    const outcome = await run(router, request(), { strategy: 'QUALITY' });

    assert.equal(answeredBy(outcome), 'best-cheap');
    assert.equal(textOf(outcome), 'best-cheap says 25 days [1].');
    assert.deepEqual(router.order('QUALITY').map((spec) => spec.name), ['best-cheap', 'best-dear', 'good']);
  });

  test('LATENCY tries unmeasured models first, then the lowest moving average of time to first token', async () => {
    const fake = await startFakeOpenAI();
    fake.script('slow', { ...answer('slow'), firstTokenDelayMs: 200 });
    fake.script('fast', { ...answer('fast'), firstTokenDelayMs: 5 });
    const router = routerOf([remote(fake, 'slow'), remote(fake, 'fast')], { latencySmoothing: 0.5 });

    assert.equal(answeredBy(await run(router, request(), { strategy: 'LATENCY' })), 'slow', 'neither measured: registry order');
    assert.equal(answeredBy(await run(router, request(), { strategy: 'LATENCY' })), 'fast', 'fast is still unmeasured');
    assert.equal(answeredBy(await run(router, request(), { strategy: 'LATENCY' })), 'fast', 'fast is faster');
    const [slow, fast] = router.health();
    assert.ok(slow!.ttftMs! >= 190, `slow measured ${slow!.ttftMs} ms`);
    assert.ok(fast!.ttftMs! < slow!.ttftMs! / 2, `fast measured ${fast!.ttftMs} ms`);

    // fast slows down: one slow sample at weight 0.5 moves its average above slow's.
    fake.script('fast', { ...answer('fast'), firstTokenDelayMs: 600 });
    assert.equal(answeredBy(await run(router, request(), { strategy: 'LATENCY' })), 'fast');
    assert.equal(answeredBy(await run(router, request(), { strategy: 'LATENCY' })), 'slow');
    assert.deepEqual(router.order('LATENCY').map((spec) => spec.name), ['slow', 'fast']);
  });

  test('a request can be limited to named models', async () => {
    const fake = await startFakeOpenAI();
    for (const name of ['a', 'b']) fake.script(name, answer(name));
    const router = routerOf([remote(fake, 'a', { costPer1kPromptTokens: 0 }), remote(fake, 'b')]);
    assert.equal(answeredBy(await run(router, request(), { models: ['b'] })), 'b');
    await assert.rejects(run(router, request(), { models: ['nope'] }).then((outcome) => Promise.reject(outcome.error)), /unknown models: nope/);
  });
});

function localSpec(): ModelSpec {
  return { name: 'local-extractive', provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: 8192, quality: 1 };
}
