/**
 * The internal `complete` mutation, called as the agents subgraph calls it: straight at the chat subgraph's
 * GraphQL endpoint through the platform's subgraph client, with a signed principal. Models: the local one and
 * one served by a local OpenAI-compatible server through the real `openai` SDK. On PGlite, and on PostgreSQL
 * (with Redis for the budgets where REDIS_URL is set) when DATABASE_URL is set.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chatSubgraph } from '@jarvis/chat';
import { openBus, type Bus } from '@jarvis/platform/bus';
import { PRINCIPAL_HEADER, principalSigner, type Principal } from '@jarvis/platform/contracts';
import type { RunningService } from '@jarvis/platform/http';
import { uuidOf } from '@jarvis/platform/ids';
import { SUPERGRAPH_PATH } from '@jarvis/platform/schema';
import { createSubgraphServer, type SubgraphServer } from '@jarvis/platform/subgraph';
import { subgraphClient, type SubgraphClient } from '@jarvis/platform/subgraph-client';
import { databaseVariants, deleteRedisKeys, dropSchemas, testConfig } from '@jarvis/platform/testing';
import { NOT_FOUND_ANSWER } from '../src/models/local-answerer.ts';
import { argumentProperty, chooseTool, localToolReply } from '../src/models/local-tools.ts';
import type { ConversationMessage, ToolCompletionRequest, ToolDefinition } from '../src/models/port.ts';
import { AllModelsFailedError } from '../src/models/router.ts';
import { countConversationTokens, countTokens } from '../src/models/tokens.ts';
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai.ts';
import { remote, routerOf } from './models-router-fixtures.ts';

const COMPLETE = `mutation($input: CompletionInput!) {
  complete(input: $input) { content toolCalls { id name arguments } model promptTokens completionTokens cost }
}`;

interface Completion {
  content: string | null;
  toolCalls: { id: string; name: string; arguments: string }[];
  model: string;
  promptTokens: number;
  completionTokens: number;
  cost: number;
}

interface MessageInput {
  role: string;
  content?: string | null;
  toolCallId?: string;
  toolCalls?: { id: string; name: string; arguments: string }[];
}

const REMOTE = 'remote-tools';
const PRICES = { prompt: 0.01, completion: 0.03 };

const HANDBOOK_TOOLS = [
  {
    name: 'lookup_weather',
    description: 'The current weather for a city',
    parameters: JSON.stringify({ type: 'object', properties: { city: { type: 'string' }, units: { type: 'string' } }, required: ['city'] }),
  },
  {
    name: 'search_handbook',
    description: 'Search the employee handbook',
    parameters: JSON.stringify({ type: 'object', properties: { limit: { type: 'integer' }, query: { type: 'string' } }, required: ['query'] }),
  },
];

const QUESTION = 'Search the handbook for the nightly hotel limit';

// At the top level: it closes after the whole file.
const fake: FakeOpenAI = await startFakeOpenAI();

describe('the local tool-chooser (not a model: a deterministic rule)', () => {
  const tools: ToolDefinition[] = HANDBOOK_TOOLS.map((tool) => ({ ...tool, parameters: JSON.parse(tool.parameters) as Record<string, unknown> }));

  test('chooses the tool sharing the most words with the question; ties and no overlap go to the first', () => {
    assert.equal(chooseTool(QUESTION, tools).name, 'search_handbook');
    assert.equal(chooseTool('Is it raining in Paris? What is the weather?', tools).name, 'lookup_weather');
    assert.equal(chooseTool('Tell me a joke', tools).name, 'lookup_weather');
    const twins = [
      { name: 'findA', description: 'handbook', parameters: {} },
      { name: 'findB', description: 'handbook', parameters: {} },
    ];
    assert.equal(chooseTool('handbook please', twins).name, 'findA');
  });

  test("puts the question into the first required string property, else query, input or the first string property", () => {
    assert.equal(argumentProperty({ properties: { n: { type: 'integer' }, city: { type: 'string' } }, required: ['n', 'city'] }), 'city');
    assert.equal(argumentProperty({ properties: { text: { type: 'string' }, query: {} } }), 'query');
    assert.equal(argumentProperty({ properties: { text: { type: 'string' }, input: { type: 'string' } } }), 'input');
    assert.equal(argumentProperty({ properties: { n: { type: 'number' }, text: { type: ['string', 'null'] } } }), 'text');
    assert.equal(argumentProperty({ properties: { n: { type: 'number' } } }), undefined);
    assert.equal(argumentProperty({}), undefined);
  });

  test('the same conversation gets the same call; after the tool results, text from them and no call', () => {
    const messages: ConversationMessage[] = [
      { role: 'system', content: 'You help employees.' },
      { role: 'user', content: QUESTION },
    ];
    const first = localToolReply(messages, tools)!;
    assert.deepEqual(localToolReply(structuredClone(messages), structuredClone(tools)), first);
    assert.equal(first.content, null);
    assert.equal(first.toolCalls.length, 1);
    assert.equal(first.toolCalls[0]!.name, 'search_handbook');
    assert.deepEqual(JSON.parse(first.toolCalls[0]!.arguments), { query: QUESTION });
    assert.match(first.toolCalls[0]!.id, /^call_local_[0-9a-f]{24}$/);

    const long = 'x'.repeat(600);
    const answered: ConversationMessage[] = [
      ...messages,
      { role: 'assistant', content: null, toolCalls: first.toolCalls },
      { role: 'tool', toolCallId: first.toolCalls[0]!.id, content: long },
    ];
    assert.deepEqual(localToolReply(answered, tools), { content: `Based on search_handbook: ${'x'.repeat(500)}`, toolCalls: [] });
    // A new question after the results: a new call.
    const again = localToolReply([...answered, { role: 'user', content: 'What is the weather in Rome?' }], tools)!;
    assert.equal(again.toolCalls[0]!.name, 'lookup_weather');
    assert.deepEqual(JSON.parse(again.toolCalls[0]!.arguments), { city: 'What is the weather in Rome?' });
    // No tools and no results: the extractive answerer's part.
    assert.equal(localToolReply(messages, []), undefined);
  });
});

describe('the router completing (tools on offer, no stream)', () => {
  const toolRequest = (overrides: Partial<ToolCompletionRequest> = {}): ToolCompletionRequest => {
    const messages: ConversationMessage[] = [{ role: 'user', content: 'Look up the hotel limit' }];
    const tools: ToolDefinition[] = [{ name: 'search', parameters: { type: 'object', properties: { query: { type: 'string' } } } }];
    return { messages, tools, promptTokens: countConversationTokens(messages, tools), maxTokens: 100, signal: new AbortController().signal, ...overrides };
  };

  test("fails over as streams do: an erring and a silent model are passed over (the silent one's call cancelled), the next answers", async () => {
    const own = await startFakeOpenAI();
    own.script('erring', { kind: 'error', status: 500, message: 'model crashed' });
    own.script('silent', { kind: 'hang' });
    own.script('able', { kind: 'toolCalls', calls: [{ id: 'c1', name: 'search', arguments: '{"query":"hotel limit"}' }] });
    const router = routerOf([remote(own, 'erring', { quality: 5 }), remote(own, 'silent', { quality: 4 }), remote(own, 'able', { quality: 3 })], {
      completionTimeoutMs: 150,
    });

    const completion = await router.complete(toolRequest(), { strategy: 'QUALITY' });

    assert.deepEqual(completion, { content: null, toolCalls: [{ id: 'c1', name: 'search', arguments: '{"query":"hotel limit"}' }], promptTokens: 17, completionTokens: 9, model: 'able' });
    assert.deepEqual(own.requests.map((r) => r.model), ['erring', 'silent', 'able']);
    const [silent] = own.requestsFor('silent');
    await silent!.closed;
    assert.equal(silent!.aborted, true);
    assert.deepEqual(own.requestsFor('able')[0]!.body.tools, [{ type: 'function', function: { name: 'search', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }]);
  });

  test('none able: AllModelsFailedError naming each failure, the timeout included', async () => {
    const own = await startFakeOpenAI();
    own.script('erring', { kind: 'error', status: 503, message: 'overloaded' });
    own.script('silent', { kind: 'hang' });
    const router = routerOf([remote(own, 'erring', { quality: 5 }), remote(own, 'silent', { quality: 4 }), remote(own, 'tiny', { quality: 3, contextWindow: 50 })], {
      completionTimeoutMs: 100,
    });
    await assert.rejects(router.complete(toolRequest(), { strategy: 'QUALITY' }), (error: unknown) => {
      assert.ok(error instanceof AllModelsFailedError);
      assert.deepEqual(error.failures.map((f) => [f.model, f.error.name]), [
        ['erring', 'ModelProviderError'],
        ['silent', 'CompletionTimeoutError'],
        ['tiny', 'ContextWindowError'],
      ]);
      return true;
    });
  });
});

test('the public API does not have complete: the supergraph marks it @inaccessible, so the gateway does not serve it', () => {
  const api = readFileSync(new URL('../../../schema/api.graphql', import.meta.url), 'utf8');
  assert.doesNotMatch(api, /\bcomplete\s*\(/);
  assert.doesNotMatch(api, /\bCompletion(Input)?\b/);
  assert.match(readFileSync(SUPERGRAPH_PATH, 'utf8'), /complete\(input: CompletionInput!\): Completion! @inaccessible/);
});

for (const variant of databaseVariants()) {
  describe(`complete, called straight at the chat subgraph, on ${variant.name}`, { skip: variant.skip }, () => {
    const config = testConfig(variant, {
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_API_KEY: 'test-key',
      // Completions retrieve nothing: knowledge is never called.
      SUBGRAPH_URLS: 'knowledge=http://127.0.0.1:9/graphql',
      CHAT_MODELS: JSON.stringify([
        { name: 'local-extractive', provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: 8192, quality: 1 },
        { name: REMOTE, provider: 'openai', costPer1kPromptTokens: PRICES.prompt, costPer1kCompletionTokens: PRICES.completion, contextWindow: 16384, quality: 5 },
      ]),
    });
    let bus: Bus;
    let server: SubgraphServer;
    let running: RunningService;
    let chat: SubgraphClient;

    before(async () => {
      bus = await openBus();
      server = await createSubgraphServer(chatSubgraph, config, { bus });
      running = await server.start(0);
      chat = subgraphClient({ name: 'chat', url: running.url, signer: principalSigner(config.INTERNAL_AUTH_SECRET!), timeoutMs: 30_000 });
    });
    after(async () => {
      await running?.close();
      await bus?.close();
      if (variant.url && config.DATABASE_SCHEMA_PREFIX) await dropSchemas(variant.url, config.DATABASE_SCHEMA_PREFIX);
      if (config.REDIS_URL && config.REDIS_KEY_PREFIX.startsWith('jarvis:test:')) await deleteRedisKeys(config.REDIS_URL, config.REDIS_KEY_PREFIX);
    });

    /** A member of a new tenant who may run agents (what a run's caller is). */
    const runner = (overrides: Partial<Principal> = {}): Principal => ({
      tenantId: randomUUID(),
      userId: randomUUID(),
      roles: ['member'],
      scopes: [],
      permissions: ['chat:use', 'agents:read', 'agents:run'],
      isolation: 'SHARED',
      plan: 'FREE',
      ...overrides,
    });

    const complete = async (principal: Principal, input: Record<string, unknown>) =>
      (await chat.request<{ complete: Completion }>(principal, COMPLETE, { input: { source: 'run:test', ...input } })).complete;

    /** How `complete` is refused: the first error's code, message and retryAfter, from the response itself. */
    async function refusal(principal: Principal, input: Record<string, unknown>): Promise<{ code: unknown; message: string; retryAfter?: unknown }> {
      const response = await fetch(running.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [PRINCIPAL_HEADER]: await principalSigner(config.INTERNAL_AUTH_SECRET!).sign(principal) },
        body: JSON.stringify({ query: COMPLETE, variables: { input: { source: 'run:test', ...input } } }),
      });
      const body = (await response.json()) as { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
      const [error] = body.errors ?? [];
      assert.ok(error, `complete was not refused: ${JSON.stringify(body)}`);
      assert.equal(body.data ?? null, null);
      return { code: error.extensions?.code, message: error.message, retryAfter: error.extensions?.retryAfter };
    }

    /** The usage events the tenant's completions wrote to the outbox: PROMPT_TOKENS first, then COMPLETION_TOKENS. */
    async function usageEvents(tenantId: string) {
      const rows = await server.db.withSystem((tx) =>
        tx.query<{ id: string; event: { payload: { metric: string; quantity: number; model: string; userId: string | null } } }>(
          `SELECT id, event FROM ${server.db.schema}.outbox WHERE tenant_id = $1 AND topic = 'usage.recorded' ORDER BY event->'payload'->>'metric' DESC, created_at`,
          [tenantId],
        ),
      );
      return rows.map(({ id, event }) => ({ id, ...event.payload }));
    }

    const completionRows = (tenantId: string) =>
      server.db.withTenant(tenantId, (tx) => tx.query<{ idempotency_key: string; status: string; source: string }>(`SELECT idempotency_key, status, source FROM completions`));

    const conversation = (question = QUESTION): MessageInput[] => [
      { role: 'system', content: 'You help the employees of Acme. Use the tools to look things up.' },
      { role: 'user', content: question },
    ];

    test('the OpenAI-compatible model calls a tool: tools and messages go as the API expects, the call comes back', async () => {
      const principal = runner();
      fake.script(REMOTE, { kind: 'toolCalls', calls: [{ id: 'call_abc', name: 'search_handbook', arguments: '{"query":"hotel limit"}' }], usage: { promptTokens: 120, completionTokens: 14 } });
      const before = fake.requestsFor(REMOTE).length;

      const completion = await complete(principal, { idempotencyKey: 'step-1', model: REMOTE, messages: conversation(), tools: HANDBOOK_TOOLS, maxTokens: 256 });

      assert.deepEqual(completion, {
        content: null,
        toolCalls: [{ id: 'call_abc', name: 'search_handbook', arguments: '{"query":"hotel limit"}' }],
        model: REMOTE,
        promptTokens: 120,
        completionTokens: 14,
        cost: (120 * PRICES.prompt + 14 * PRICES.completion) / 1000,
      });
      const sent = fake.requestsFor(REMOTE).slice(before);
      assert.equal(sent.length, 1);
      const { body, headers } = sent[0]!;
      assert.notEqual(body.stream, true);
      assert.equal(headers.authorization, 'Bearer test-key');
      assert.equal(body.max_completion_tokens, 256);
      assert.deepEqual(body.tools, [
        { type: 'function', function: { name: 'lookup_weather', description: 'The current weather for a city', parameters: JSON.parse(HANDBOOK_TOOLS[0]!.parameters) } },
        { type: 'function', function: { name: 'search_handbook', description: 'Search the employee handbook', parameters: JSON.parse(HANDBOOK_TOOLS[1]!.parameters) } },
      ]);
      assert.deepEqual(body.messages, conversation());
      const rows = await completionRows(principal.tenantId!);
      assert.deepEqual(rows, [{ idempotency_key: 'step-1', status: 'DONE', source: 'run:test' }]);
    });

    test('the tool results sent back (assistant tool_calls, tool messages) produce the text answer', async () => {
      const principal = runner();
      fake.script(REMOTE, { kind: 'answer', tokens: ['The ', 'limit ', 'is ', '180 ', 'euros.'], usage: { promptTokens: 160, completionTokens: 6 } });
      const before = fake.requestsFor(REMOTE).length;
      const messages: MessageInput[] = [
        ...conversation(),
        { role: 'assistant', content: null, toolCalls: [{ id: 'call_abc', name: 'search_handbook', arguments: '{"query":"hotel limit"}' }] },
        { role: 'tool', toolCallId: 'call_abc', content: 'Hotels: up to 180 euros a night.' },
      ];

      const completion = await complete(principal, { idempotencyKey: 'step-2', model: REMOTE, messages, tools: HANDBOOK_TOOLS });

      assert.equal(completion.content, 'The limit is 180 euros.');
      assert.deepEqual(completion.toolCalls, []);
      assert.equal(completion.promptTokens, 160);
      const [{ body }] = fake.requestsFor(REMOTE).slice(before) as [FakeOpenAI['requests'][0]];
      assert.deepEqual(body.messages, [
        ...conversation(),
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'search_handbook', arguments: '{"query":"hotel limit"}' } }] },
        { role: 'tool', content: 'Hotels: up to 180 euros a night.', tool_call_id: 'call_abc' },
      ]);
      assert.equal(body.max_completion_tokens, 1024, 'the default: the smaller of 1024 and a quarter of the window');
    });

    test('the local model: the same conversation gets the same tool and arguments, then text from the results; real token counts', async () => {
      const principal = runner();
      const ask = (key: string, messages: MessageInput[], tools: unknown[] | null = HANDBOOK_TOOLS) =>
        complete(principal, { idempotencyKey: key, model: 'local-extractive', messages, ...(tools ? { tools } : {}) });
      const first = await ask('local-1', conversation());
      const second = await ask('local-2', conversation());
      assert.deepEqual(second, first, 'deterministic: same input, same tool, arguments and id');
      assert.equal(first.content, null);
      assert.equal(first.model, 'local-extractive');
      assert.equal(first.cost, 0);
      assert.equal(first.toolCalls.length, 1);
      const [call] = first.toolCalls as [Completion['toolCalls'][0]];
      assert.equal(call.name, 'search_handbook');
      assert.deepEqual(JSON.parse(call.arguments), { query: QUESTION });
      const tools = HANDBOOK_TOOLS.map((tool) => ({ ...tool, parameters: JSON.parse(tool.parameters) as Record<string, unknown> }));
      assert.equal(first.promptTokens, countConversationTokens(conversation() as ConversationMessage[], tools));
      assert.ok(first.completionTokens > 0);

      const result = 'Hotel stays are reimbursed up to 180 EUR per night in most cities.';
      const final = await ask('local-3', [...conversation(), { role: 'assistant', content: null, toolCalls: first.toolCalls }, { role: 'tool', toolCallId: call.id, content: result }]);
      assert.deepEqual(final.toolCalls, []);
      assert.equal(final.content, `Based on search_handbook: ${result}`);
      assert.equal(final.completionTokens, countTokens(final.content!));

      // Without tools it answers as the extractive answerer, from the conversation's other messages.
      const plain = await ask(
        'local-4',
        [
          { role: 'system', content: 'Hotel stays are reimbursed up to 180 EUR per night. Flights under six hours are economy class.' },
          { role: 'user', content: 'What is the hotel limit per night?' },
        ],
        null,
      );
      assert.equal(plain.content, 'Hotel stays are reimbursed up to 180 EUR per night. [1]');
      assert.equal(plain.completionTokens, countTokens(plain.content!));
      const nothing = await ask('local-5', [{ role: 'user', content: 'Who won the match yesterday?' }], null);
      assert.equal(nothing.content, NOT_FOUND_ANSWER);
    });

    test('the same idempotencyKey twice: one model call, the same completion, one usage event per metric', async () => {
      const principal = runner();
      fake.script(REMOTE, { kind: 'answer', tokens: ['Once ', 'only.'], usage: { promptTokens: 30, completionTokens: 2 } });
      const before = fake.requestsFor(REMOTE).length;
      const input = { idempotencyKey: 'run-1:step-3', model: REMOTE, messages: conversation('Say it once') };

      const first = await complete(principal, input);
      const again = await complete(principal, input);
      // Even a request that differs otherwise (a retry that rebuilt it) gets the stored completion back.
      const rebuilt = await complete(principal, { ...input, model: 'local-extractive', messages: conversation('Say it twice') });

      assert.equal(first.content, 'Once only.');
      assert.deepEqual(again, first);
      assert.deepEqual(rebuilt, first);
      assert.equal(fake.requestsFor(REMOTE).length - before, 1, 'one model call');
      const events = await usageEvents(principal.tenantId!);
      assert.deepEqual(
        events.map(({ id, metric, quantity, model, userId }) => ({ id, metric, quantity, model, userId })),
        [
          { id: uuidOf(`chat-completion-usage:${principal.tenantId}:run-1:step-3:PROMPT_TOKENS`), metric: 'PROMPT_TOKENS', quantity: 30, model: REMOTE, userId: principal.userId },
          { id: uuidOf(`chat-completion-usage:${principal.tenantId}:run-1:step-3:COMPLETION_TOKENS`), metric: 'COMPLETION_TOKENS', quantity: 2, model: REMOTE, userId: principal.userId },
        ],
      );
    });

    test('the same key at the same moment: the second waits for the first, and the model is called once', async () => {
      const principal = runner();
      fake.script(REMOTE, { kind: 'answer', tokens: ['Slow ', 'and ', 'single.'], firstTokenDelayMs: 400 });
      const before = fake.requestsFor(REMOTE).length;
      const input = { idempotencyKey: 'concurrent', model: REMOTE, messages: conversation('Take your time') };

      const [a, b] = await Promise.all([complete(principal, input), complete(principal, input)]);

      assert.deepEqual(a, b);
      assert.equal(a.content, 'Slow and single.');
      assert.equal(fake.requestsFor(REMOTE).length - before, 1);
      assert.equal((await usageEvents(principal.tenantId!)).length, 2);
    });

    test("keys are per tenant: another tenant's call with the same key gets its own completion", async () => {
      const one = runner();
      const other = runner();
      const input = (question: string) => ({ idempotencyKey: 'shared-key', model: 'local-extractive', messages: conversation(question), tools: HANDBOOK_TOOLS });
      const mine = await complete(one, input('Search the handbook for the hotel limit'));
      const theirs = await complete(other, input('What is the weather in Oslo?'));
      assert.equal(mine.toolCalls[0]!.name, 'search_handbook');
      assert.equal(theirs.toolCalls[0]!.name, 'lookup_weather');
      assert.equal((await usageEvents(one.tenantId!)).length, 2);
      assert.equal((await usageEvents(other.tenantId!)).length, 2);
      assert.deepEqual(await complete(one, input('anything')), mine);
    });

    test("over the member's token budget: QUOTA_EXCEEDED with retryAfter, no model call, nothing stored; within it again, the key works", async () => {
      const principal = runner();
      const tenantId = principal.tenantId!;
      const setAllowance = (tokens: number) =>
        server.db.withTenant(tenantId, (tx) =>
          tx.query(
            `INSERT INTO member_allowances (tenant_id, user_id, tokens_per_day, changed_at) VALUES ($1, $2, $3, clock_timestamp())
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET tokens_per_day = excluded.tokens_per_day, changed_at = excluded.changed_at`,
            [tenantId, principal.userId, tokens],
          ),
        );
      await setAllowance(50);
      fake.script(REMOTE, { kind: 'answer', tokens: ['Within ', 'budget.'] });
      const before = fake.requestsFor(REMOTE).length;
      const input = { idempotencyKey: 'budgeted', model: REMOTE, messages: conversation('Anything'), maxTokens: 100 };

      const refused = await refusal(principal, input);
      assert.equal(refused.code, 'QUOTA_EXCEEDED');
      assert.match(refused.message, /50 tokens a day are used up/);
      assert.ok(typeof refused.retryAfter === 'number' && refused.retryAfter >= 1 && refused.retryAfter <= 86_400, String(refused.retryAfter));
      assert.equal(fake.requestsFor(REMOTE).length - before, 0, 'no model call');
      assert.deepEqual(await completionRows(tenantId), []);
      assert.deepEqual(await usageEvents(tenantId), []);

      await setAllowance(10_000);
      assert.equal((await complete(principal, input)).content, 'Within budget.');
      assert.equal(fake.requestsFor(REMOTE).length - before, 1);
    });

    test("over the tenant's daily budget: QUOTA_EXCEEDED, for a service account too", async () => {
      const principal = runner({ userId: undefined, apiKeyId: randomUUID() });
      const tenantId = principal.tenantId!;
      await server.db.withTenant(tenantId, (tx) =>
        tx.query(`INSERT INTO quota_overrides (tenant_id, tokens_per_day, changed_at) VALUES ($1, 10, clock_timestamp())`, [tenantId]),
      );
      const before = fake.requestsFor(REMOTE).length;
      const refused = await refusal(principal, { idempotencyKey: 'k', model: REMOTE, messages: conversation() });
      assert.equal(refused.code, 'QUOTA_EXCEEDED');
      assert.match(refused.message, /tenant's 10 tokens a day/);
      assert.equal(fake.requestsFor(REMOTE).length - before, 0);
    });

    test('a model that fails: MODEL_UNAVAILABLE and the key given up, so a retry calls the model and is counted once', async () => {
      const principal = runner();
      fake.script(REMOTE, { kind: 'error', status: 503, message: 'overloaded' }, { kind: 'answer', tokens: ['Recovered.'] });
      const before = fake.requestsFor(REMOTE).length;
      const input = { idempotencyKey: 'flaky', model: REMOTE, messages: conversation('Try again') };

      const refused = await refusal(principal, input);
      assert.equal(refused.code, 'MODEL_UNAVAILABLE');
      assert.doesNotMatch(refused.message, /127\.0\.0\.1|overloaded/, 'no upstream details');
      assert.deepEqual(await completionRows(principal.tenantId!), []);

      assert.equal((await complete(principal, input)).content, 'Recovered.');
      assert.equal(fake.requestsFor(REMOTE).length - before, 2);
      assert.equal((await usageEvents(principal.tenantId!)).length, 2);
    });

    test('an unknown model, or messages that are not well-formed: BAD_USER_INPUT, and no model call', async () => {
      const principal = runner();
      const before = fake.requests.length;
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ model: 'no-such-model', messages: conversation() }, /no model "no-such-model"/],
        [{ messages: [] }, /at least one message/],
        [{ messages: [{ role: 'wizard', content: 'hi' }] }, /system, user, assistant or tool/],
        [{ messages: [{ role: 'user' }] }, /messages\.0\.content/],
        [{ messages: [...conversation(), { role: 'tool', toolCallId: 'call_x', content: 'result' }] }, /messages\.2\.toolCallId: no earlier assistant message/],
        [{ messages: [{ role: 'assistant' }] }, /content or tool calls/],
        [{ messages: [{ role: 'user', content: 'hi', toolCalls: [{ id: 'a', name: 'f', arguments: '{}' }] }] }, /only an assistant message calls tools/],
        [{ messages: [{ role: 'assistant', toolCalls: [{ id: 'a', name: 'f', arguments: 'not json' }] }] }, /JSON text/],
        [{ messages: conversation(), tools: [{ name: 'bad name!', parameters: '{}' }] }, /tools\.0\.name/],
        [{ messages: conversation(), tools: [{ name: 'f', parameters: '[1]' }] }, /JSON Schema object/],
        [{ messages: conversation(), tools: [{ name: 'f', parameters: '{}' }, { name: 'f', parameters: '{}' }] }, /offered twice/],
        [{ messages: conversation(), model: 'local-extractive', maxTokens: 9000 }, /do not fit in the 8192-token window/],
        [{ messages: conversation(), idempotencyKey: '' }, /idempotencyKey/],
        [{ messages: conversation(), source: ' ' }, /source/],
      ];
      for (const [input, message] of cases) {
        const refused = await refusal(principal, { idempotencyKey: 'bad', ...input });
        assert.equal(refused.code, 'BAD_USER_INPUT', `${JSON.stringify(input)}: ${refused.message}`);
        assert.match(refused.message, message);
      }
      assert.equal(fake.requests.length, before);
      assert.deepEqual(await completionRows(principal.tenantId!), []);
    });

    test('a caller without agents:run is refused, as is an anonymous one', async () => {
      const input = { idempotencyKey: 'nope', messages: conversation() };
      const member = runner({ permissions: ['chat:use', 'agents:read', 'agents:write', 'agents:approve', 'tenant:admin'] });
      assert.equal((await refusal(member, input)).code, 'FORBIDDEN');
      const anonymous: Principal = { tenantId: null, roles: [], scopes: [], permissions: [], isolation: 'SHARED' };
      assert.equal((await refusal(anonymous, input)).code, 'UNAUTHENTICATED');
      assert.deepEqual(await completionRows(member.tenantId!), []);
    });

    test('a DEDICATED tenant: the completion and its usage are kept in its own schema', async () => {
      const principal = runner({ isolation: 'DEDICATED', plan: 'ENTERPRISE' });
      const completion = await complete(principal, { idempotencyKey: 'dedicated', model: 'local-extractive', messages: conversation(), tools: HANDBOOK_TOOLS });
      assert.equal(completion.toolCalls[0]!.name, 'search_handbook');
      const schema = `${server.db.schema}_t_${principal.tenantId!.replaceAll('-', '')}`;
      const [{ n }] = (await server.db.withSystem((tx) => tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.outbox WHERE topic = 'usage.recorded'`))) as [{ n: number }];
      assert.equal(n, 2);
      assert.deepEqual(await usageEvents(principal.tenantId!), [], 'nothing in the shared schema');
    });
  });
}
