import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { freePort } from '@jarvis/platform/testing';
import { ModelProviderError, OpenAIChatModel, type OpenAIChatModelOptions } from '../src/models/openai-chat.ts';
import type { ChatMessage, CompletionChunk, CompletionRequest } from '../src/models/port.ts';
import { countMessageTokens, countTokens } from '../src/models/tokens.ts';
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai.ts';

function modelOf(fake: FakeOpenAI, overrides: Partial<OpenAIChatModelOptions> = {}): OpenAIChatModel {
  return new OpenAIChatModel({ name: 'upstream', model: 'gpt-test', baseURL: fake.baseURL, apiKey: 'sk-test-secret', ...overrides });
}

function request(overrides: Partial<CompletionRequest> = {}): CompletionRequest {
  const messages: ChatMessage[] = overrides.messages ?? [
    { role: 'system', content: 'Answer from the passages.\n\n[1] Leave\nEmployees get 25 days of paid leave.' },
    { role: 'user', content: 'How many days of leave do I get?' },
  ];
  return {
    messages,
    promptTokens: countMessageTokens(messages),
    question: 'How many days of leave do I get?',
    passages: [{ n: 1, title: 'Leave', text: 'Employees get 25 days of paid leave.' }],
    maxTokens: 64,
    signal: new AbortController().signal,
    ...overrides,
  };
}

async function collect(stream: AsyncIterable<CompletionChunk>): Promise<CompletionChunk[]> {
  const chunks: CompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

describe('OpenAI-compatible chat model', () => {
  test('streams the tokens in order, then the usage the server reports', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-test', { kind: 'answer', tokens: ['You ', 'get ', '25 ', 'days ', '[1].'], usage: { promptTokens: 41, completionTokens: 6 } });

    const chunks = await collect(modelOf(fake).stream(request()));

    assert.deepEqual(chunks, [
      { kind: 'token', text: 'You ' },
      { kind: 'token', text: 'get ' },
      { kind: 'token', text: '25 ' },
      { kind: 'token', text: 'days ' },
      { kind: 'token', text: '[1].' },
      { kind: 'usage', promptTokens: 41, completionTokens: 6 },
    ]);
  });

  test('asks for a stream with usage, sends the messages, model, limit, temperature and key', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-test', { kind: 'answer', tokens: ['ok'] });
    const sent = request({ temperature: 0.2, maxTokens: 99 });

    await collect(modelOf(fake).stream(sent));

    const [{ body, headers }] = fake.requests as [FakeOpenAI['requests'][0]];
    assert.equal(body.model, 'gpt-test');
    assert.equal(body.stream, true);
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.deepEqual(body.messages, sent.messages);
    assert.equal(body.max_completion_tokens, 99);
    assert.equal(body.max_tokens, undefined);
    assert.equal(body.temperature, 0.2);
    assert.equal(headers.authorization, 'Bearer sk-test-secret');
  });

  test('max_tokens instead for servers that want it, and no Authorization header without a key', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-test', { kind: 'answer', tokens: ['ok'] });

    await collect(modelOf(fake, { maxTokensField: 'max_tokens', apiKey: undefined }).stream(request({ maxTokens: 12 })));

    const [{ body, headers }] = fake.requests as [FakeOpenAI['requests'][0]];
    assert.equal(body.max_tokens, 12);
    assert.equal(body.max_completion_tokens, undefined);
    assert.equal(body.temperature, undefined);
    assert.equal(headers.authorization, undefined);
  });

  test('without usage from the server, usage is estimated with the tokenizer', async () => {
    const fake = await startFakeOpenAI();
    const tokens = ['Employees ', 'get ', '25 ', 'days ', 'of ', 'paid ', 'leave ', '[1].'];
    fake.script('gpt-test', { kind: 'answer', tokens, usage: null });
    const sent = request();

    const chunks = await collect(modelOf(fake).stream(sent));

    const usage = chunks.at(-1);
    assert.deepEqual(usage, { kind: 'usage', promptTokens: countMessageTokens(sent.messages), completionTokens: countTokens(tokens.join('')) });
    assert.ok(countTokens(tokens.join('')) >= 8 && countMessageTokens(sent.messages) > 20, 'the estimates count real text');
  });

  test('aborting the signal mid-stream cancels the HTTP request: the server sees the client leave', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-test', { kind: 'answer', tokens: Array.from({ length: 50 }, (_, i) => `t${i} `), tokenDelayMs: 40 });
    const controller = new AbortController();
    const seen: string[] = [];

    await assert.rejects(
      (async () => {
        for await (const chunk of modelOf(fake).stream(request({ signal: controller.signal }))) {
          if (chunk.kind === 'token') seen.push(chunk.text);
          if (seen.length === 2) controller.abort();
        }
      })(),
      (error: Error) => error.name === 'AbortError',
    );

    const [recorded] = fake.requests as [FakeOpenAI['requests'][0]];
    await recorded.closed;
    assert.equal(recorded.aborted, true);
    assert.deepEqual(seen, ['t0 ', 't1 ']);
  });

  test('aborting before the first token cancels a request the server is holding', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-test', { kind: 'hang', headers: true });
    const controller = new AbortController();
    const reason = new Error('client left');

    const consumed = collect(modelOf(fake).stream(request({ signal: controller.signal })));
    await waitFor(() => fake.requests.length === 1);
    controller.abort(reason);

    await assert.rejects(consumed, (error) => error === reason);
    await fake.requests[0]!.closed;
    assert.equal(fake.requests[0]!.aborted, true);
  });

  test('an HTTP 500 fails with the status, endpoint and model, and without the key the server echoed', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-test', { kind: 'error', status: 500, message: 'upstream exploded for sk-test-secret' });

    const error = await collect(modelOf(fake).stream(request())).then(
      () => assert.fail('expected a failure'),
      (caught: unknown) => caught,
    );

    assert.ok(error instanceof ModelProviderError);
    assert.equal(error.status, 500);
    assert.equal(
      error.message,
      `chat completions request to ${fake.baseURL}/chat/completions (model gpt-test) failed: HTTP 500 upstream exploded for [redacted]`,
    );
    assert.equal(fake.requests.length, 1, 'the SDK does not retry: fallback is the router\'s');
  });

  test('a connection broken mid-stream fails after the tokens already streamed', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-test', { kind: 'break', tokens: ['a ', 'b ', 'c ', 'd '], after: 2 });
    const seen: CompletionChunk[] = [];

    await assert.rejects(
      (async () => {
        for await (const chunk of modelOf(fake).stream(request())) seen.push(chunk);
      })(),
      (error: Error) =>
        error instanceof ModelProviderError && /\(model gpt-test\) failed: the connection was lost mid-stream \(other side closed\)$/.test(error.message),
    );
    assert.deepEqual(seen, [
      { kind: 'token', text: 'a ' },
      { kind: 'token', text: 'b ' },
    ]);
  });

  test('a stream that ends without a finish reason is an error, not a short answer', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-test', { kind: 'truncate', tokens: ['half ', 'an '] });

    const seen: CompletionChunk[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of modelOf(fake).stream(request())) seen.push(chunk);
      })(),
      /failed: the stream ended before the model finished its answer$/,
    );
    assert.equal(seen.filter((chunk) => chunk.kind === 'usage').length, 0);
  });

  test('an unreachable endpoint fails naming the endpoint and the refused connection', async () => {
    const baseURL = `http://127.0.0.1:${await freePort()}/v1`;
    const model = new OpenAIChatModel({ name: 'upstream', model: 'gpt-test', baseURL });
    await assert.rejects(
      collect(model.stream(request())),
      (error: Error) => error.message === `chat completions request to ${baseURL}/chat/completions (model gpt-test) failed: connection failed: ECONNREFUSED`,
    );
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
