/**
 * For end-to-end tests of chat and quotas: asking as a member, reading the answer's events over graphql-ws until
 * it ends, following any subscription, setting the tenant's quota and reading its ledger.
 */
import assert from 'node:assert/strict';
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import { as, type Member, type TestStack } from './helpers.ts';

export interface AnswerEvent {
  seq: number;
  type: 'TOKEN' | 'CITATIONS' | 'USAGE' | 'DONE' | 'ERROR';
  delta: string | null;
  usage: { model: string; promptTokens: number; completionTokens: number; cacheHit: string | null } | null;
  error: { code: string; message: string } | null;
}

const ASK = `mutation($input: AskInput!) { ask(input: $input) { answer { id } } }`;
const EVENTS = `subscription($id: ID!) {
  answerStream(messageId: $id) { seq type delta usage { model promptTokens completionTokens cacheHit } error { code message } }
}`;

/** Asking and reading answers through the stack's gateway, one WebSocket per member; `close` ends them all. */
export function answers(stack: TestStack) {
  const clients = new Map<string, Client>();
  const clientOf = (member: Member) => {
    const authorization = member.headers.authorization!;
    let client = clients.get(authorization);
    if (!client) {
      client = createClient({ url: stack.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization }, retryAttempts: 0 });
      clients.set(authorization, client);
    }
    return client;
  };

  /** The answer's events from the first to DONE or ERROR, heartbeats left out. */
  async function events(member: Member, answerId: string): Promise<AnswerEvent[]> {
    const seen: AnswerEvent[] = [];
    for await (const result of clientOf(member).iterate<{ answerStream: Omit<AnswerEvent, 'type'> & { type: AnswerEvent['type'] | 'HEARTBEAT' } }>({ query: EVENTS, variables: { id: answerId } })) {
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      const event = result.data!.answerStream;
      if (event.type === 'HEARTBEAT') continue;
      seen.push({ ...event, type: event.type });
      if (event.type === 'DONE' || event.type === 'ERROR') break;
    }
    return seen;
  }

  /** Queues an answer to `question` (from the knowledge bases given; none unless given) and returns its id. */
  async function start(member: Member, question: string, knowledgeBaseIds: string[] = []): Promise<string> {
    const { ask } = await as<{ ask: { answer: { id: string } } }>(stack, member, ASK, { input: { question, knowledgeBaseIds } });
    return ask.answer.id;
  }

  /**
   * Any subscription (or operation) as `member`, on the member's socket: its results as they come, and how it
   * ended; `stop` unsubscribes.
   */
  function follow<T = Record<string, unknown>>(member: Member, query: string, variables: Record<string, unknown> = {}) {
    const results: FormattedExecutionResult<T, unknown>[] = [];
    let failure: unknown;
    let stop = () => {};
    const ended = new Promise<void>((resolve) => {
      stop = clientOf(member).subscribe<T>(
        { query, variables },
        {
          next: (result) => void results.push(result),
          error: (error) => {
            failure = error;
            resolve();
          },
          complete: resolve,
        },
      );
    });
    return { results, ended, failure: () => failure, stop: () => stop() };
  }

  return {
    start,
    events,
    follow,
    /** Asks and reads the whole answer. */
    async ask(member: Member, question: string, knowledgeBaseIds: string[] = []) {
      const id = await start(member, question, knowledgeBaseIds);
      return { id, events: await events(member, id) };
    },
    close: () => Promise.all([...clients.values()].map((client) => client.dispose())),
  };
}

/** The last event: DONE or ERROR. */
export const ending = (events: AnswerEvent[]) => events.at(-1)!;

/** The answer's USAGE event; fails when it has none. */
export function usageOf(events: AnswerEvent[]): NonNullable<AnswerEvent['usage']> {
  const usage = events.find((event) => event.type === 'USAGE')?.usage;
  assert.ok(usage, `no USAGE event in ${JSON.stringify(events)}`);
  return usage;
}

/** The answer was refused before any token with QUOTA_EXCEEDED, for the reason `message` matches. */
export function assertRefused(events: AnswerEvent[], message: RegExp) {
  assert.deepEqual(events.map((e) => e.type), ['ERROR'], `refused before any token: ${JSON.stringify(events)}`);
  assert.equal(ending(events).error?.code, 'QUOTA_EXCEEDED');
  assert.match(ending(events).error!.message, message);
}

/** Tokens an answer spent: its prompt and completion. */
export const spent = (usage: NonNullable<AnswerEvent['usage']>) => usage.promptTokens + usage.completionTokens;

/** The model window these tests configure (ANSWER_MODELS); a quarter of it is kept for the answer. */
export const CONTEXT_WINDOW = 4096;
export const ANSWER_TOKENS = CONTEXT_WINDOW / 4;
/** What an answer reserves against every token budget before the model is called (generate.ts): its prompt and the answer's room. */
export const reservation = (promptTokens: number) => promptTokens + ANSWER_TOKENS;
/** CHAT_MODELS: the local extractive answerer alone, free, with CONTEXT_WINDOW. */
export const ANSWER_MODELS = JSON.stringify([
  { name: 'local-extractive', provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: CONTEXT_WINDOW, quality: 1 },
]);

/** The tenant's own limits (setQuota) as `admin`; a limit left out is the plan's again. */
export const setQuota = (stack: TestStack, admin: Member, quota: Partial<Record<'tokensPerDay' | 'tokensPerMonth' | 'storageBytes' | 'concurrentStreams', number>>) =>
  as(stack, admin, `mutation($q: SetQuotaInput!) { setQuota(input: $q) { plan } }`, { q: quota });

/** The tenant's ledger this month: each metric's total. */
export async function ledger(stack: TestStack, member: Member): Promise<Record<string, number>> {
  const { tenant } = await as<{ tenant: { usage: { totals: { metric: string; quantity: number }[] } } }>(
    stack,
    member,
    `{ tenant { usage { totals { metric quantity } } } }`,
  );
  return Object.fromEntries(tenant.usage.totals.map((total) => [total.metric, total.quantity]));
}
