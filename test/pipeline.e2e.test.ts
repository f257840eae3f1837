/**
 * One pipeline for every transport: the same operations sent over HTTP and over WebSocket pass each gateway
 * policy once, at the same stage, with the same outcome, and get the same answers; a document is parsed and
 * validated once, whichever transport brings it and however often it comes again. Read from the gateway's own
 * metrics (jarvis_gateway_policy_steps_total, jarvis_gateway_documents_validated_total).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { databaseVariants } from '@jarvis/platform/testing';
import { signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

type Answer = { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
type Request = { query?: string; documentId?: string };
type Operation = { caller: 'owner' | 'anonymous'; request: Request };

/** A document of the console's manifest (the gateway's default trusted documents), by its hash. */
const PERMISSIONS = 'query Permissions { permissions { description name } }';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** One of each path through the stages: plain, by hash, invalid, and narrowed by authorization. */
const OPERATIONS: Operation[] = [
  { caller: 'owner', request: { query: 'query Slug { tenant { slug } }' } },
  { caller: 'owner', request: { documentId: sha256(PERMISSIONS) } },
  { caller: 'owner', request: { query: '{ tenant { noSuchField } }' } },
  { caller: 'anonymous', request: { query: '{ __typename tenant { slug } }' } },
];

/** Each policy's steps for those operations, on either transport. */
const EXPECTED_STEPS = {
  'persisted documents/document/resolved': 4,
  'plan rate/admit/admitted': 4,
  'request metering/admit/admitted': 4,
  // The invalid document stops at validation; the others reach the operation policies.
  'authorization/operation/unchanged': 2,
  'authorization/operation/narrowed': 1,
  'field rate limits/operation/unchanged': 3,
};

describe('HTTP and WebSocket operations pass one pipeline', () => {
  let stack: TestStack;
  let owner: Member;
  const sockets: Client[] = [];
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!, { AUTH_DEV_LOGIN: 'true' });
    owner = await signUp(stack, 'pipeline');
  });
  after(async () => {
    await Promise.all(sockets.map((client) => client.dispose()));
    await stack?.close();
  });

  const headersOf = (caller: Operation['caller']): Record<string, string> => (caller === 'owner' ? owner.headers : {});

  async function overHttp({ caller, request }: Operation): Promise<Answer> {
    const response = await fetch(stack.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headersOf(caller) },
      body: JSON.stringify(request),
    });
    return (await response.json()) as Answer;
  }

  async function overWebSocket({ caller, request }: Operation): Promise<Answer> {
    const client = createClient({ url: stack.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: caller === 'owner' ? { authorization: owner.headers.authorization } : {} });
    sockets.push(client);
    const payload = request.documentId
      ? { query: '', extensions: { persistedQuery: { version: 1, sha256Hash: request.documentId } } }
      : { query: request.query! };
    try {
      for await (const result of client.iterate(payload)) return result as Answer;
      return {};
    } catch (errors) {
      return { errors: errors as Answer['errors'] };
    }
  }

  async function metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(new URL('/metrics', stack.gatewayUrl))).text();
    const values = new Map<string, number>();
    for (const [, labels, value] of text.matchAll(/^jarvis_gateway_policy_steps_total\{(.*)\} (\d+)$/gm)) {
      const label = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(labels!)![1];
      values.set(`${label('policy')}/${label('stage')}/${label('outcome')}`, Number(value));
    }
    values.set('validated', Number(/^jarvis_gateway_documents_validated_total(?:\{[^}]*\})? (\d+)$/m.exec(text)?.[1] ?? 0));
    return values;
  }

  /** The metrics' increase while `run` ran. */
  async function stepsOf(run: () => Promise<unknown>): Promise<Record<string, number>> {
    const before = await metrics();
    await run();
    const grown: Record<string, number> = {};
    for (const [key, value] of await metrics()) if (value > (before.get(key) ?? 0)) grown[key] = value - (before.get(key) ?? 0);
    return grown;
  }

  /** Errors without their locations, which differ by transport only in how a client reports them. */
  const comparable = (answer: Answer) => ({ data: answer.data, codes: answer.errors?.map((e) => e.extensions?.code) });

  test('each policy applies once per operation, the same way over HTTP and WebSocket', async () => {
    const answers = { http: [] as Answer[], websocket: [] as Answer[] };
    const http = await stepsOf(async () => {
      for (const operation of OPERATIONS) answers.http.push(await overHttp(operation));
    });
    const websocket = await stepsOf(async () => {
      for (const operation of OPERATIONS) answers.websocket.push(await overWebSocket(operation));
    });
    const { validated: _http, ...httpSteps } = http;
    const { validated: _websocket, ...websocketSteps } = websocket;
    assert.deepEqual(httpSteps, EXPECTED_STEPS, 'over HTTP');
    assert.deepEqual(websocketSteps, EXPECTED_STEPS, 'over WebSocket');
    assert.deepEqual(answers.websocket.map(comparable), answers.http.map(comparable), 'the same answers');
    assert.equal(answers.http[3]!.errors?.[0]?.extensions?.code, 'UNAUTHORIZED_FIELD_OR_TYPE');
  });

  test('a document is parsed and validated once, whichever transport brings it first', async () => {
    for (const [first, then] of [
      [overHttp, overWebSocket],
      [overWebSocket, overHttp],
    ] as const) {
      const operation: Operation = { caller: 'owner', request: { query: `query Once { tenant { id } } # ${first.name} ${Math.random()}` } };
      assert.deepEqual(await stepsOf(() => first(operation)).then((steps) => steps.validated), 1, `new, by ${first.name}`);
      assert.equal((await stepsOf(() => then(operation))).validated, undefined, `again, by ${then.name}`);
      assert.equal((await stepsOf(() => first(operation))).validated, undefined, `again, by ${first.name}`);
    }
  });
});
