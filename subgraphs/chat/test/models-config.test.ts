import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LocalAnswerer } from '../src/models/local-answerer.ts';
import { OpenAIChatModel } from '../src/models/openai-chat.ts';
import type { ChatMessage, CompletionChunk, ContextPassage } from '../src/models/port.ts';
import { cost, createModelRegistry, DEFAULT_MODEL_SPECS, ModelConfigError, parseModelSpecs } from '../src/models/registry.ts';
import { countMessageTokens, countTokens, fitToBudget, systemContent } from '../src/models/tokens.ts';
import { startFakeOpenAI } from './fake-openai.ts';

describe('token counting', () => {
  test('counts BPE tokens offline, special-token text included', () => {
    assert.equal(countTokens(''), 0);
    assert.equal(countTokens('hello'), 1);
    assert.equal(countTokens('Hello world, this is a test of the tokenizer.'), 11);
    assert.ok(countTokens('<|endoftext|>') > 1, 'counted as the plain text it is');
  });

  test('message tokens add each message\'s framing and the reply priming', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hello' },
    ];
    assert.equal(countMessageTokens(messages), countTokens('Be brief.') + countTokens('hello') + 2 * 4 + 3);
  });
});

describe('fitToBudget', () => {
  const systemPrompt = 'You answer questions about the company handbook. Cite passages as [n].';
  const question = 'How many vacation days can I carry over into next year?';
  const passages: ContextPassage[] = [1, 2, 3].map((n) => ({
    n,
    title: `Handbook section ${n}`,
    text: `Section ${n} explains how vacation days accrue monthly, how requests are approved by managers, and how unused days are handled at the end of each calendar year.`,
  }));
  const history: ChatMessage[] = [
    { role: 'user', content: 'First question: when does the office open in the morning on weekdays?' },
    { role: 'assistant', content: 'The office opens at eight in the morning on every weekday, holidays excepted.' },
    { role: 'user', content: 'Second question: who approves vacation requests for the engineering team?' },
    { role: 'assistant', content: 'Engineering managers approve vacation requests for their own team members.' },
  ];
  const expectedMessages = (keptPassages: ContextPassage[], keptHistory: ChatMessage[]): ChatMessage[] => [
    { role: 'system', content: systemContent(systemPrompt, keptPassages) },
    ...keptHistory,
    { role: 'user', content: question },
  ];
  /** A little slack for token counts across seams; far less than a passage or a history message. */
  const SLACK = 5;
  const fit = (budget: number) => fitToBudget({ systemPrompt, passages, history, question, contextWindow: budget + 256, maxTokens: 256 });

  test('keeps everything when everything fits, passages in the system message, the question last', () => {
    const fitted = fit(10_000);
    assert.deepEqual(fitted.messages, expectedMessages(passages, history));
    assert.match(fitted.messages[0]!.content, /^You answer questions.*\n\n\[1\] Handbook section 1\nSection 1 explains/s);
    assert.equal(fitted.promptTokens, countMessageTokens(fitted.messages));
    assert.equal(fitted.budget, 10_000);
    assert.equal(fitted.fits, true);
  });

  test('drops the oldest history first, keeping every passage and the most recent messages', () => {
    const kept = expectedMessages(passages, history.slice(2));
    const fitted = fit(countMessageTokens(kept) + SLACK);
    assert.deepEqual(fitted.passages, passages);
    assert.deepEqual(fitted.history, history.slice(2));
    assert.deepEqual(fitted.messages, kept);
    assert.ok(fitted.promptTokens <= fitted.budget);
  });

  test('drops all history before any passage, then the lowest passages', () => {
    const withoutHistory = fit(countMessageTokens(expectedMessages(passages, [])) + SLACK);
    assert.deepEqual(withoutHistory.passages, passages);
    assert.deepEqual(withoutHistory.history, []);

    const twoPassages = fit(countMessageTokens(expectedMessages(passages.slice(0, 2), [])) + SLACK);
    assert.deepEqual(twoPassages.passages.map((p) => p.n), [1, 2]);
    assert.deepEqual(twoPassages.history, []);
    assert.deepEqual(twoPassages.messages, expectedMessages(passages.slice(0, 2), []));
    assert.ok(twoPassages.promptTokens <= twoPassages.budget);
  });

  test('the question is always kept, even past the budget, and says it does not fit', () => {
    const fitted = fit(10);
    assert.deepEqual(fitted.passages, []);
    assert.deepEqual(fitted.history, []);
    assert.deepEqual(fitted.messages, [
      { role: 'system', content: systemPrompt },
      { role: 'user', content: question },
    ]);
    assert.equal(fitted.fits, false);
  });

  test('a larger answer reservation leaves less room for context', () => {
    const window = countMessageTokens(expectedMessages(passages, history)) + SLACK;
    const roomy = fitToBudget({ systemPrompt, passages, history, question, contextWindow: window + 100, maxTokens: 100 });
    const tight = fitToBudget({ systemPrompt, passages, history, question, contextWindow: window + 100, maxTokens: 160 });
    assert.equal(roomy.history.length, 4);
    assert.ok(tight.history.length < 4);
    assert.deepEqual(tight.history, history.slice(history.length - tight.history.length));
  });
});

describe('model registry', () => {
  test('without CHAT_MODELS: the local extractive answerer alone, free, 8192 tokens, quality 1', () => {
    assert.deepEqual(parseModelSpecs(undefined), [
      { name: 'local-extractive', provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: 8192, quality: 1 },
    ]);
    assert.deepEqual(parseModelSpecs('  '), DEFAULT_MODEL_SPECS);
    const registry = createModelRegistry();
    assert.equal(registry.models.length, 1);
    assert.ok(registry.get('local-extractive')!.model instanceof LocalAnswerer);
    assert.equal(registry.get('local-extractive')!.model.name, 'local-extractive');
  });

  test('CHAT_MODELS builds OpenAI-compatible models that call upstream with their model id', async () => {
    const fake = await startFakeOpenAI();
    fake.script('gpt-upstream-id', { kind: 'answer', tokens: ['Hello', '!'] });
    const registry = createModelRegistry({
      chatModels: JSON.stringify([
        { name: 'fast', provider: 'openai', model: 'gpt-upstream-id', costPer1kPromptTokens: 0.15, costPer1kCompletionTokens: 0.6, contextWindow: 128000, quality: 4 },
        { name: 'offline', provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: 8192, quality: 1 },
      ]),
      openaiBaseURL: fake.baseURL,
      openaiApiKey: 'sk-from-config',
    });

    assert.deepEqual(registry.specs.map((spec) => spec.name), ['fast', 'offline']);
    const fast = registry.get('fast')!;
    assert.ok(fast.model instanceof OpenAIChatModel);
    const chunks: CompletionChunk[] = [];
    const messages: ChatMessage[] = [{ role: 'user', content: 'hi' }];
    const request = { messages, promptTokens: countMessageTokens(messages), question: 'hi', passages: [], maxTokens: 5, signal: new AbortController().signal };
    for await (const chunk of fast.model.stream(request)) chunks.push(chunk);

    assert.deepEqual(chunks.slice(0, 2), [{ kind: 'token', text: 'Hello' }, { kind: 'token', text: '!' }]);
    assert.equal(fake.requests[0]!.body.model, 'gpt-upstream-id');
    assert.equal(fake.requests[0]!.headers.authorization, 'Bearer sk-from-config');
    assert.ok(registry.get('offline')!.model instanceof LocalAnswerer);
  });

  test('the upstream model id defaults to the name', () => {
    const [spec] = parseModelSpecs('[{"name":"gpt-4o-mini","provider":"openai","costPer1kPromptTokens":0,"costPer1kCompletionTokens":0,"contextWindow":1000,"quality":3}]');
    assert.equal(spec!.model, undefined);
    const registry = createModelRegistry({
      chatModels: '[{"name":"gpt-4o-mini","provider":"openai","costPer1kPromptTokens":0,"costPer1kCompletionTokens":0,"contextWindow":1000,"quality":3}]',
      openaiBaseURL: 'http://127.0.0.1:9/v1',
    });
    assert.equal(registry.get('gpt-4o-mini')!.model.name, 'gpt-4o-mini');
  });

  test('an openai model without OPENAI_BASE_URL or OPENAI_API_KEY is refused at start-up', () => {
    assert.throws(
      () => createModelRegistry({ chatModels: '[{"name":"m","provider":"openai","costPer1kPromptTokens":0,"costPer1kCompletionTokens":0,"contextWindow":1000,"quality":3}]' }),
      (error: Error) => error instanceof ModelConfigError && /model "m" uses provider openai: set OPENAI_BASE_URL/.test(error.message),
    );
  });

  test('invalid CHAT_MODELS is refused, naming each problem', () => {
    assert.throws(() => parseModelSpecs('[{'), (error: Error) => error instanceof ModelConfigError && /^CHAT_MODELS is not JSON: /.test(error.message));
    assert.throws(() => parseModelSpecs('[]'), /at least one model/);
    const base = { provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: 1000, quality: 3 };
    assert.throws(
      () => parseModelSpecs(JSON.stringify([{ ...base, name: 'a', quality: 6 }, { ...base, name: 'b', contextWindow: -1, temprature: 1 }, { ...base, name: 'a' }])),
      (error: Error) =>
        error instanceof ModelConfigError &&
        /CHAT_MODELS\[0\]\["quality"\]: /.test(error.message) &&
        /CHAT_MODELS\[1\]\["contextWindow"\]: /.test(error.message) &&
        /CHAT_MODELS\[1\]: .*temprature/.test(error.message) &&
        /CHAT_MODELS\[2\]\["name"\]: "a" is named twice/.test(error.message),
    );
    assert.throws(() => parseModelSpecs(JSON.stringify([{ ...base, name: 'x', provider: 'anthropic' }])), /CHAT_MODELS\[0\]\["provider"\]/);
  });

  test('cost is in USD from the per-1k prices', () => {
    const spec = { costPer1kPromptTokens: 0.5, costPer1kCompletionTokens: 1.5 };
    assert.equal(cost(spec, { promptTokens: 1000, completionTokens: 2000 }), 3.5);
    assert.equal(cost(spec, { promptTokens: 0, completionTokens: 0 }), 0);
    assert.ok(Math.abs(cost({ costPer1kPromptTokens: 0.15, costPer1kCompletionTokens: 0.6 }, { promptTokens: 2000, completionTokens: 500 }) - 0.6) < 1e-12);
    assert.equal(cost(DEFAULT_MODEL_SPECS[0]!, { promptTokens: 5000, completionTokens: 300 }), 0);
  });
});
