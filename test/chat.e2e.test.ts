/**
 * Streaming chat through the supergraph, with graphql-ws's client: an answer to a question about an ingested
 * document streams token by token through the gateway, cites the document (resolved by knowledge) and names
 * its author (resolved by tenancy) in the events, and ends in DONE; a reader that reconnects with its last seq
 * gets the rest with no gap and no repeat; the same question again comes from the inference cache, never
 * another tenant's; a stream nobody follows any more cancels the model call (seen at an OpenAI-compatible
 * server); HEARTBEATs fill the wait; callers see only their own answers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { trustTenancyIssuer } from '@jarvis/platform/config';
import type { RunningService } from '@jarvis/platform/http';
import { createSubgraphServer } from '@jarvis/platform/subgraph';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { createGatewayServer } from '@jarvis/gateway';
import { chatSubgraph } from '@jarvis/chat';
import { NOT_FOUND_ANSWER } from '../subgraphs/chat/src/models/local-answerer.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../subgraphs/chat/test/fake-openai.ts';
import { addMember, as, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const HANDBOOK = `# Travel policy

## Flights

Economy class is booked for every flight under six hours. Business class needs a director's approval.

## Hotels

The nightly hotel limit is 180 euros in most cities.
`;

const ANSWER_EVENTS = `subscription($id: ID!, $after: Int) {
  answerStream(messageId: $id, afterSeq: $after) {
    seq type delta
    citations { n title text document { title } knowledgeBase { name } }
    usage { model promptTokens completionTokens cost cacheHit }
    error { code message }
    message { status author { email } conversation { title } }
  }
}`;

const ASK = `mutation($input: AskInput!) { ask(input: $input) { conversation { id } answer { id status } } }`;

interface Event {
  seq: number;
  type: 'TOKEN' | 'CITATIONS' | 'USAGE' | 'HEARTBEAT' | 'DONE' | 'ERROR';
  delta: string | null;
  citations: { n: number; title: string; text: string; document: { title: string } | null; knowledgeBase: { name: string } | null }[] | null;
  usage: { model: string; promptTokens: number; completionTokens: number; cost: number; cacheHit: string | null } | null;
  error: { code: string; message: string } | null;
  message: { status: string; author: { email: string } | null; conversation: { title: string } };
}

const REMOTE_MODEL = 'remote-large';
// At the top level: it closes after the whole file.
const fake: FakeOpenAI = await startFakeOpenAI();

for (const variant of databaseVariants()) {
  describe(`streaming chat through the gateway on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let knowledgeBaseId: string;
    const clients: Client[] = [];

    before(async () => {
      stack = await startTestStack(variant, {
        AUTH_DEV_LOGIN: 'true',
        OPENAI_BASE_URL: fake.baseURL,
        OPENAI_API_KEY: 'test-key',
        CHAT_MODELS: JSON.stringify([
          { name: 'local-extractive', provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: 8192, quality: 1 },
          { name: REMOTE_MODEL, provider: 'openai', model: REMOTE_MODEL, costPer1kPromptTokens: 0.01, costPer1kCompletionTokens: 0.03, contextWindow: 8192, quality: 5 },
        ]),
        CHAT_LOCAL_TOKEN_DELAY_MS: '15',
        // Wide enough that a busy machine's first subscription arrives in time; the cancel test waits it out.
        CHAT_ABANDON_MS: '2000',
        CHAT_HEARTBEAT_MS: '150',
        LOG_LEVEL: 'error',
      });
      owner = await signUp(stack, 'chat', { name: 'Chatty Ltd' });
      knowledgeBaseId = await handbookIn(owner);
    });
    after(async () => {
      await Promise.all(clients.map((client) => client.dispose()));
      await stack?.close();
    });

    async function handbookIn(member: Member): Promise<string> {
      const { createKnowledgeBase } = await as<{ createKnowledgeBase: { id: string } }>(
        stack,
        member,
        `mutation($input: CreateKnowledgeBaseInput!) { createKnowledgeBase(input: $input) { id } }`,
        { input: { name: 'Handbook' } },
      );
      const { addDocument } = await as<{ addDocument: { id: string } }>(
        stack,
        member,
        `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`,
        { input: { knowledgeBaseId: createKnowledgeBase.id, title: 'Travel policy', content: HANDBOOK } },
      );
      await waitFor(
        async () => (await as<{ document: { status: string } }>(stack, member, `query($id: ID!) { document(id: $id) { status } }`, { id: addDocument.id })).document.status,
        'the handbook to be READY',
        { until: (status) => status === 'READY', timeoutMs: 30_000 },
      );
      return createKnowledgeBase.id;
    }

    const connect = (member?: Member) => {
      const client = createClient({
        url: stack.gatewayUrl.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: member ? { authorization: member.headers.authorization } : {},
        retryAttempts: 0,
      });
      clients.push(client);
      return client;
    };

    const ask = async (member: Member, input: Record<string, unknown>) =>
      (await as<{ ask: { conversation: { id: string }; answer: { id: string; status: string } } }>(stack, member, ASK, { input })).ask;

    /** Reads the answer's events until `stop` says so (default: DONE or ERROR), then unsubscribes. */
    async function read(client: Client, id: string, { after: afterSeq = 0, stop = (e: Event) => e.type === 'DONE' || e.type === 'ERROR' } = {}) {
      const events: Event[] = [];
      const subscription = client.iterate<{ answerStream: Event }>({ query: ANSWER_EVENTS, variables: { id, after: afterSeq } });
      for await (const result of subscription) {
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        const event = result.data!.answerStream;
        events.push(event);
        if (stop(event)) break;
      }
      return events;
    }

    const text = (events: Event[]) => events.filter((e) => e.type === 'TOKEN').map((e) => e.delta).join('');
    const withoutHeartbeats = (events: Event[]) => events.filter((e) => e.type !== 'HEARTBEAT');

    test('an answer streams token by token with citations resolved across subgraphs, and ends in DONE', async () => {
      const { answer, conversation } = await ask(owner, { question: 'What is the nightly hotel limit?', knowledgeBaseIds: [knowledgeBaseId] });
      assert.equal(answer.status, 'STREAMING');
      const events = withoutHeartbeats(await read(connect(owner), answer.id));
      assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1), 'seq 1, 2, 3… without a gap');
      const types = events.map((e) => e.type);
      assert.ok(types.filter((t) => t === 'TOKEN').length > 5, `many tokens: ${JSON.stringify(events)}`);
      assert.deepEqual(types.slice(-3), ['CITATIONS', 'USAGE', 'DONE']);
      assert.match(text(events), /180 euros/);
      assert.match(text(events), /\[1\]/);
      const [citation] = events.at(-3)!.citations!;
      assert.equal(citation!.document?.title, 'Travel policy', 'document title from knowledge');
      assert.equal(citation!.knowledgeBase?.name, 'Handbook');
      assert.equal(events[0]!.message.author?.email, owner.email, 'author from tenancy');
      assert.equal(events.at(-1)!.message.status, 'DONE');
      const usage = events.at(-2)!.usage!;
      assert.equal(usage.model, 'local-extractive');
      assert.ok(usage.promptTokens > 0 && usage.completionTokens > 0);
      assert.equal(usage.cacheHit, null);

      const stored = await as<{ conversation: { title: string; messages: { role: string; content: string; status: string }[] } }>(
        stack,
        owner,
        `query($id: ID!) { conversation(id: $id) { title messages { role content status } } }`,
        { id: conversation.id },
      );
      assert.deepEqual(stored.conversation.messages, [
        { role: 'USER', content: 'What is the nightly hotel limit?', status: 'DONE' },
        { role: 'ASSISTANT', content: text(events), status: 'DONE' },
      ]);
    });

    test("an answer's tokens reach the usage ledger per model and per member", async () => {
      const reader = await signUp(stack, 'metered');
      const { answer } = await ask(reader, { question: 'How many tokens does this take?', knowledgeBaseIds: [] });
      const usage = (await read(connect(reader), answer.id)).find((e) => e.type === 'USAGE')!.usage!;
      const ledger = (groupBy: string) =>
        as<{ tenant: { usage: { groups: { key: string | null; totals: { metric: string; quantity: number }[] }[] } } }>(
          stack,
          reader,
          `query($by: UsageGroupBy) { tenant { usage(groupBy: $by) { groups { key totals { metric quantity } } } } }`,
          { by: groupBy },
        );
      const tokens = (groups: { key: string | null; totals: { metric: string; quantity: number }[] }[], key: string | null) =>
        Object.fromEntries((groups.find((g) => g.key === key)?.totals ?? []).filter((t) => t.metric.endsWith('_TOKENS')).map((t) => [t.metric, t.quantity]));
      const byModel = await waitFor(async () => (await ledger('MODEL')).tenant.usage.groups, 'the tokens in the ledger', {
        until: (groups) => tokens(groups, 'local-extractive').COMPLETION_TOKENS !== undefined,
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      assert.deepEqual(tokens(byModel, 'local-extractive'), { PROMPT_TOKENS: usage.promptTokens, COMPLETION_TOKENS: usage.completionTokens });
      assert.deepEqual(tokens((await ledger('USER')).tenant.usage.groups, reader.userId), { PROMPT_TOKENS: usage.promptTokens, COMPLETION_TOKENS: usage.completionTokens });
    });

    test('a reader that reconnects with its last seq gets the rest, with no gap and no repeat', async () => {
      const { answer } = await ask(owner, { question: 'Which class is booked for flights under six hours?', knowledgeBaseIds: [knowledgeBaseId] });
      const first = withoutHeartbeats(await read(connect(owner), answer.id, { stop: (e) => e.type === 'TOKEN' && e.seq >= 3 }));
      const last = first.at(-1)!.seq;
      const rest = withoutHeartbeats(await read(connect(owner), answer.id, { after: last }));
      const all = [...first, ...rest];
      assert.deepEqual(all.map((e) => e.seq), all.map((_, i) => i + 1));
      assert.equal(all.at(-1)!.type, 'DONE');
      const full = withoutHeartbeats(await read(connect(owner), answer.id));
      assert.equal(text(all), text(full));
      assert.match(text(full), /Economy class/);
    });

    test('the same question again is served from the cache and reported as a hit; another tenant never gets it', async () => {
      const question = 'Does business class need approval?';
      const usageOf = async (member: Member, kb: string) => {
        const { answer } = await ask(member, { question, knowledgeBaseIds: [kb] });
        const events = await read(connect(member), answer.id);
        return { usage: events.find((e) => e.type === 'USAGE')!.usage!, text: text(events) };
      };
      const first = await usageOf(owner, knowledgeBaseId);
      const second = await usageOf(owner, knowledgeBaseId);
      assert.equal(first.usage.cacheHit, null);
      assert.equal(second.usage.cacheHit, 'EXACT');
      assert.equal(second.text, first.text, 'a hit streams the same answer');
      assert.equal(second.usage.completionTokens, first.usage.completionTokens, 'the tokens it saved');

      const neighbour = await signUp(stack, 'neighbour');
      const theirs = await usageOf(neighbour, await handbookIn(neighbour));
      assert.equal(theirs.usage.cacheHit, null, 'the same prompt in another tenant is not a hit');
    });

    test('an answer nobody follows any more is cancelled, and the model call with it (seen at the provider)', async () => {
      fake.script(REMOTE_MODEL, { kind: 'answer', tokens: Array.from({ length: 200 }, (_, i) => `word${i} `), tokenDelayMs: 50 });
      const before = fake.requestsFor(REMOTE_MODEL).length;
      const { answer } = await ask(owner, { question: 'Tell me everything about hotels.', knowledgeBaseIds: [knowledgeBaseId], model: REMOTE_MODEL });
      const seen = await read(connect(owner), answer.id, { stop: (e) => e.type === 'TOKEN' && e.seq >= 3 });
      assert.ok(seen.some((e) => e.type === 'TOKEN'), JSON.stringify(seen));
      const request = (await waitFor(async () => fake.requestsFor(REMOTE_MODEL)[before], 'the model call'))!;
      await request.closed;
      assert.equal(request.aborted, true, 'the provider saw the client go away');
      const events = withoutHeartbeats(await read(connect(owner), answer.id));
      const last = events.at(-1)!;
      assert.equal(last.type, 'ERROR');
      assert.equal(last.error?.code, 'CANCELLED');
      assert.equal(last.message.status, 'CANCELLED');
      assert.ok(text(events).length > 0, 'what was generated is kept');
    });

    test('HEARTBEAT events fill the wait for a slow first token; a broken stream ends in ERROR', async () => {
      fake.script(REMOTE_MODEL, { kind: 'answer', tokens: ['Slow ', 'answer.'], firstTokenDelayMs: 700 });
      const slow = await ask(owner, { question: 'Slow?', knowledgeBaseIds: [knowledgeBaseId], model: REMOTE_MODEL });
      const events = await read(connect(owner), slow.answer.id);
      const firstToken = events.findIndex((e) => e.type === 'TOKEN');
      assert.ok(events.slice(0, firstToken).some((e) => e.type === 'HEARTBEAT'), events.map((e) => e.type).join(' '));
      assert.equal(events.at(-1)!.type, 'DONE');

      fake.script(REMOTE_MODEL, { kind: 'break', tokens: ['Half ', 'an ', 'answer ', 'then ', 'nothing'], after: 3 });
      const broken = await ask(owner, { question: 'Break?', knowledgeBaseIds: [knowledgeBaseId], model: REMOTE_MODEL });
      const brokenEvents = withoutHeartbeats(await read(connect(owner), broken.answer.id));
      assert.equal(text(brokenEvents), 'Half an answer ');
      assert.equal(brokenEvents.at(-1)!.type, 'ERROR');
      assert.equal(brokenEvents.at(-1)!.error?.code, 'STREAM_BROKEN');
    });

    test("the tenant's own token quota binds: past it, an answer ends in ERROR with QUOTA_EXCEEDED", async () => {
      const frugal = await signUp(stack, 'frugal');
      await as(stack, frugal, `mutation { setQuota(input: { tokensPerDay: 50 }) { limits { tokensPerDay } } }`);
      // The lowered quota reaches chat over the bus: ask until an answer is refused (or give up after 30 s).
      const refused = await waitFor(
        async () => {
          const { answer } = await ask(frugal, { question: 'Anything at all?', knowledgeBaseIds: [] });
          return withoutHeartbeats(await read(connect(frugal), answer.id)).at(-1)!;
        },
        'an answer refused for the quota',
        { until: (last) => last.type === 'ERROR', timeoutMs: 30_000, intervalMs: 200 },
      );
      assert.equal(refused.error?.code, 'QUOTA_EXCEEDED');
      assert.match(refused.error!.message, /50 tokens a day/);
    });

    test("callers see only their own answers; anonymous subscriptions are refused", async () => {
      const { answer } = await ask(owner, { question: 'Private question?', knowledgeBaseIds: [knowledgeBaseId] });
      const colleague = await addMember(stack, owner, `colleague@${owner.slug}.test`, 'member');
      await assert.rejects(read(connect(colleague), answer.id), (errors: { extensions?: { code?: string } }[]) => errors[0]?.extensions?.code === 'NOT_FOUND');
      await assert.rejects(read(connect(), answer.id), (errors: { extensions?: { code?: string } }[]) => errors[0]?.extensions?.code === 'UNAUTHORIZED_FIELD_OR_TYPE');
      await read(connect(owner), answer.id);
    });
  });
}

const ABANDON_MS = 2000;
/** When the watchdog (answers/generate.ts) cancels an answer nobody follows: two checks, ABANDON_MS / 4 apart, past it. */
const UNFOLLOWED_CANCELLED_MS = ABANDON_MS * 1.5;

/** Two chat replicas on one PostgreSQL database, each behind a gateway of its own. */
const shared = databaseVariants().find((variant) => variant.name === 'postgres')!;

describe('an answer streams from any chat replica', { skip: shared.skip }, () => {
  let stack: TestStack;
  let replica: RunningService;
  let secondGateway: RunningService;
  let owner: Member;
  const clients: Client[] = [];

  before(async () => {
    // The answers ("I could not find…", nine tokens) last about 9 s: long enough to outlive an unfollowed
    // answer's cancellation (UNFOLLOWED_CANCELLED_MS) followed, and to be cancelled well before their end after.
    stack = await startTestStack(shared, { AUTH_DEV_LOGIN: 'true', CHAT_LOCAL_TOKEN_DELAY_MS: '1000', CHAT_ABANDON_MS: String(ABANDON_MS) });
    const replicaConfig = { ...stack.config, SUBGRAPH_URLS: { ...stack.config.SUBGRAPH_URLS, knowledge: stack.subgraphUrls.knowledge! } };
    replica = await (await createSubgraphServer(chatSubgraph, replicaConfig)).start(0);
    const tenancyBase = stack.subgraphUrls.tenancy!.replace(/\/graphql$/, '');
    const gatewayConfig = { ...stack.config, SUBGRAPH_URLS: { ...stack.subgraphUrls, chat: replica.url }, ...trustTenancyIssuer(stack.config, tenancyBase) };
    secondGateway = await (await createGatewayServer(gatewayConfig)).start(0);
    owner = await signUp(stack, 'replicas');
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    await secondGateway?.close();
    await replica?.close();
    await stack?.close();
  });

  const connect = (gatewayUrl: string) => {
    const client = createClient({ url: gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: owner.headers.authorization }, retryAttempts: 0 });
    clients.push(client);
    return client;
  };

  type StreamEvent = { seq: number; type: string; delta: string | null; error: { code: string } | null };
  const ended = (event: StreamEvent) => event.type === 'DONE' || event.type === 'ERROR';

  async function read(client: Client, id: string, afterSeq: number, stop: (event: StreamEvent) => boolean) {
    const events: StreamEvent[] = [];
    for await (const result of client.iterate<{ answerStream: StreamEvent }>({
      query: `subscription($id: ID!, $after: Int) { answerStream(messageId: $id, afterSeq: $after) { seq type delta error { code } } }`,
      variables: { id, after: afterSeq },
    })) {
      const event = result.data!.answerStream;
      if (event.type === 'HEARTBEAT') continue;
      events.push(event);
      if (stop(event)) break;
    }
    return events;
  }

  test('asked on one replica, read on the other, resumed on the first: no gap, no repeat', async () => {
    const { ask } = await as<{ ask: { answer: { id: string } } }>(stack, owner, ASK, { input: { question: 'How does streaming across replicas work?', knowledgeBaseIds: [] } });
    const fromSecond = await read(connect(secondGateway.url), ask.answer.id, 0, (event) => event.seq >= 3);
    const fromFirst = await read(connect(stack.gatewayUrl), ask.answer.id, fromSecond.at(-1)!.seq, ended);
    const all = [...fromSecond, ...fromFirst];
    assert.deepEqual(all.map((event) => event.seq), all.map((_, i) => i + 1));
    assert.equal(all.at(-1)!.type, 'DONE');
  });

  test('a reader on another replica keeps the answer alive; when it leaves, the answer is cancelled', async () => {
    const asked = Date.now();
    const { ask } = await as<{ ask: { conversation: { id: string }; answer: { id: string } } }>(stack, owner, ASK, {
      input: { question: 'Tell me a long story about replicas and streams and databases.', knowledgeBaseIds: [] },
    });
    // Followed only through the second replica past the time an unfollowed answer is cancelled: the first goes on generating.
    const followed = await read(connect(secondGateway.url), ask.answer.id, 0, (event) => ended(event) || Date.now() - asked > UNFOLLOWED_CANCELLED_MS + 500);
    assert.equal(followed.at(-1)!.type, 'TOKEN', 'watched from the other replica, it was not abandoned');

    const stored = await waitFor(() => answerMessage(ask.conversation.id, ask.answer.id), 'the answer nobody follows to end', {
      until: (message) => message.status !== 'STREAMING',
      timeoutMs: 15_000,
    });
    assert.equal(stored.status, 'CANCELLED');
    const partial = NOT_FOUND_ANSWER.startsWith(stored.content) && stored.content.length < NOT_FOUND_ANSWER.length;
    assert.ok(partial, `the model call was stopped part way, not run to its end: "${stored.content}"`);
    const rest = await read(connect(stack.gatewayUrl), ask.answer.id, followed.at(-1)!.seq, ended);
    assert.deepEqual([rest.at(-1)!.type, rest.at(-1)!.error?.code], ['ERROR', 'CANCELLED']);
  });

  async function answerMessage(conversationId: string, messageId: string) {
    const { conversation } = await as<{ conversation: { messages: { id: string; content: string; status: string }[] } }>(
      stack,
      owner,
      `query($id: ID!) { conversation(id: $id) { messages { id content status } } }`,
      { id: conversationId },
    );
    return conversation.messages.find((message) => message.id === messageId)!;
  }
});
