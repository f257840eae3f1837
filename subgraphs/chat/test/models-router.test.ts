import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '@jarvis/platform/testing';
import { LocalAnswerer } from '../src/models/local-answerer.ts';
import { OpenAIChatModel } from '../src/models/openai-chat.ts';
import type { ChatMessage, CompletionRequest } from '../src/models/port.ts';
import { ModelRegistry, type ModelSpec, type RegisteredModel } from '../src/models/registry.ts';
import {
  AllModelsFailedError,
  CircuitOpenError,
  ContextWindowError,
  FirstTokenTimeoutError,
  ModelRouter,
  StreamBrokenError,
  type ModelRouterOptions,
  type RouteOptions,
  type RoutedChunk,
} from '../src/models/router.ts';
import { countMessageTokens } from '../src/models/tokens.ts';
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai.ts';

type Pricing = Partial<Pick<ModelSpec, 'costPer1kPromptTokens' | 'costPer1kCompletionTokens' | 'quality' | 'contextWindow'>>;

/** A model served by the fake under its own name. */
function remote(fake: FakeOpenAI, name: string, pricing: Pricing = {}): RegisteredModel {
  const spec: ModelSpec = {
    name,
    provider: 'openai',
    costPer1kPromptTokens: 0.001,
    costPer1kCompletionTokens: 0.002,
    contextWindow: 16_000,
    quality: 3,
    ...pricing,
  };
  return { spec, model: new OpenAIChatModel({ name, model: name, baseURL: fake.baseURL, apiKey: 'sk-test' }) };
}

function routerOf(models: RegisteredModel[], options: ModelRouterOptions = {}): ModelRouter {
  return new ModelRouter(new ModelRegistry(models), { firstTokenTimeoutMs: 2_000, ...options });
}

function request(overrides: Partial<CompletionRequest> = {}): CompletionRequest {
  const question = 'How many days of paid leave do employees get?';
  const passages = [{ n: 1, title: 'Leave policy', text: 'Employees get 25 days of paid leave per year. Unused days expire in March.' }];
  const messages: ChatMessage[] = overrides.messages ?? [
    { role: 'system', content: `Answer from the passages and cite them.\n\n[1] Leave policy\n${passages[0]!.text}` },
    { role: 'user', content: question },
  ];
  return {
    messages,
    promptTokens: countMessageTokens(messages),
    question,
    passages,
    maxTokens: 100,
    signal: new AbortController().signal,
    ...overrides,
  };
}

interface Outcome {
  chunks: RoutedChunk[];
  error: unknown;
}

async function run(router: ModelRouter, req: CompletionRequest = request(), options: RouteOptions = {}): Promise<Outcome> {
  const chunks: RoutedChunk[] = [];
  try {
    for await (const chunk of router.stream(req, options)) chunks.push(chunk);
    return { chunks, error: undefined };
  } catch (error) {
    return { chunks, error };
  }
}

function answeredBy(outcome: Outcome): string | undefined {
  assert.equal(outcome.error, undefined, `expected an answer, got ${String(outcome.error)}`);
  const first = outcome.chunks[0];
  return first?.kind === 'model' ? first.name : undefined;
}

function textOf(outcome: Outcome): string {
  return outcome.chunks.map((chunk) => (chunk.kind === 'token' ? chunk.text : '')).join('');
}

const answer = (name: string) => ({ kind: 'answer' as const, tokens: [`${name} `, 'says ', '25 ', 'days ', '[1].'] });

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
