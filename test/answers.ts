/** For end-to-end tests of chat: asking as a member, and reading the answer's events over graphql-ws until it ends. */
import assert from 'node:assert/strict';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { as, type Member, type TestStack } from './helpers.ts';

export interface AnswerEvent {
  seq: number;
  type: 'TOKEN' | 'CITATIONS' | 'USAGE' | 'DONE' | 'ERROR';
  usage: { model: string; promptTokens: number; completionTokens: number; cacheHit: string | null } | null;
  error: { code: string; message: string } | null;
}

const ASK = `mutation($input: AskInput!) { ask(input: $input) { answer { id } } }`;
const EVENTS = `subscription($id: ID!) {
  answerStream(messageId: $id) { seq type usage { model promptTokens completionTokens cacheHit } error { code message } }
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

  return {
    start,
    events,
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
