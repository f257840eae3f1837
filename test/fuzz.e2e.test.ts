/**
 * A seeded fuzz pass over the public surface: `/graphql` over HTTP (JSON, GET, multipart) and WebSocket, and
 * `/oauth/token` (tenancy's and the gateway's pass-through). Whatever arrives, the answer is a 4xx or a GraphQL
 * error, never a 5xx; no socket is closed with 4500; and oversized input does not grow the gateway's memory.
 * FUZZ_SEED reproduces a run (a failure prints its seed).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { databaseVariants, seededRandom, type SeededRandom } from '@jarvis/platform/testing';
import { signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

type Random = SeededRandom;

const DOCUMENTS = [
  '{ __typename }',
  '{ permissions { name description } }',
  '{ tenant { slug users { email roles } knowledgeBases { name } } }',
  'query Q($n: Int) { tenant { conversations(first: $n) { id title } } }',
  'mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }',
  'mutation { ask(input: { question: "hi" }) { answer { id } } }',
  '{ search(query: "x", topK: 2) { text score } }',
  'subscription($id: ID!) { answerStream(messageId: $id) { seq type } }',
  '{ ... on Query { ...F } } fragment F on Query { __typename }',
];

const NASTY_STRINGS = ['', ' ', '\u0000', '\uffff', '\ud800', '%', '%E0%A4%A', '{', '}', '"', '\\', '$', '__proto__', 'constructor', 'x'.repeat(5000), '🙂', '\r\n\r\n', '<script>', "'; DROP TABLE users; --"];

function randomString(random: Random): string {
  if (random.next() < 0.5) return random.pick(NASTY_STRINGS);
  return Array.from({ length: random.below(40) }, () => String.fromCharCode(random.below(0x2fff))).join('');
}

/** Only what an HTTP header may carry (visible ASCII and spaces). */
const printable = (text: string) => text.replace(/[^\x20-\x7e]/g, '');

/** Percent-encoding that keeps a lone surrogate as it is, which is malformed input too. */
function encoded(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return text;
  }
}

function randomJson(random: Random, depth = 0): unknown {
  const kinds = depth > 3 ? ['null', 'number', 'string', 'bool'] : ['null', 'number', 'string', 'bool', 'array', 'object'];
  switch (random.pick(kinds)) {
    case 'null':
      return null;
    case 'number':
      return random.pick([0, -1, 1e308, -0.5, 2 ** 53, NaN]);
    case 'bool':
      return random.next() < 0.5;
    case 'array':
      return Array.from({ length: random.below(4) }, () => randomJson(random, depth + 1));
    case 'object':
      return Object.fromEntries(Array.from({ length: random.below(4) }, () => [randomString(random), randomJson(random, depth + 1)]));
    default:
      return randomString(random);
  }
}

/** A document with a few random characters inserted, removed or replaced. */
function mutatedDocument(random: Random): string {
  let text = random.pick(DOCUMENTS);
  for (let i = random.below(4); i >= 0; i--) {
    const at = random.below(text.length + 1);
    const action = random.below(3);
    const char = random.pick(['{', '}', '(', ')', '$', '@', '...', ':', '"', '!', '[', ']', ' ', 'on', 'x', '\n', '#']);
    text = action === 0 ? text.slice(0, at) + char + text.slice(at) : action === 1 ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + char + text.slice(at + 1);
  }
  return text;
}

/** Selections nested deep: fields, inline fragments and spreads, inside or outside introspection. */
function deepDocument(random: Random): string {
  const depth = random.pick([13, 100, 1_000, 2_400]);
  const wrapper = random.pick([['{ ', ' }', 'Query'], ['{ __schema { ', ' } }', '__Schema'], ['{ __type(name: "Query") { ', ' } }', '__Type']]);
  const level = () => random.pick([`... on ${wrapper[2]} { `, '... { ', `${wrapper[2] === 'Query' ? 'tenant' : 'types'} { `]);
  const levels = Array.from({ length: depth }, level);
  return `${wrapper[0]}${levels.join('')}__typename${' }'.repeat(depth)}${wrapper[1]}`;
}

function randomRequestBody(random: Random): unknown {
  const roll = random.next();
  if (roll > 0.85) {
    // A well-formed document with plausible variables: what a real client sends, in any order of operations.
    return { query: random.pick(DOCUMENTS), variables: { id: '00000000-0000-4000-8000-000000000000', n: random.below(50), input: randomJson(random) } };
  }
  const base: Record<string, unknown> = {
    query: roll < 0.1 ? deepDocument(random) : roll < 0.7 ? mutatedDocument(random) : randomJson(random),
  };
  if (random.next() < 0.5) base.variables = random.next() < 0.5 ? randomJson(random) : { input: randomJson(random), n: randomJson(random), id: randomJson(random) };
  if (random.next() < 0.3) base.operationName = random.next() < 0.5 ? randomString(random) : randomJson(random);
  if (random.next() < 0.3) base.extensions = random.next() < 0.5 ? { persistedQuery: randomJson(random) } : randomJson(random);
  if (random.next() < 0.2) base.documentId = randomJson(random);
  return random.next() < 0.1 ? randomJson(random) : base;
}

function randomMultipart(random: Random): { body: string; contentType: string } {
  const boundary = random.next() < 0.8 ? 'FUZZ' : printable(randomString(random));
  const part = (name: string, value: string, filename?: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n${value}\r\n`;
  const parts = [
    part('operations', random.next() < 0.6 ? JSON.stringify(randomRequestBody(random)) : randomString(random)),
    part('map', random.next() < 0.6 ? JSON.stringify({ 0: [random.pick(['variables.file', 'variables.__proto__.x', 'constructor.prototype', 'variables', randomString(random)])] }) : randomString(random)),
    part(random.pick(['0', '1', 'file', randomString(random)]), randomString(random), random.pick(['a.txt', '', '../../etc/passwd'])),
  ];
  const shuffled = random.next() < 0.3 ? [...parts].reverse() : parts;
  const cut = random.next() < 0.3 ? random.below(200) : undefined;
  const body = `${shuffled.join('')}--${boundary}--\r\n`;
  return { body: cut === undefined ? body : body.slice(0, cut), contentType: random.next() < 0.9 ? `multipart/form-data; boundary=${boundary}` : 'multipart/form-data' };
}

function randomTokenRequest(random: Random): { body: string; headers: Record<string, string> } {
  const grant = random.pick(['client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:jarvis:params:oauth:grant-type:dev-login', randomString(random)]);
  const params = [`grant_type=${encoded(grant)}`];
  const keys = ['refresh_token', 'client_id', 'client_secret', 'subject_token', 'subject_token_type', 'tenant', 'email', 'grant_type', randomString(random)];
  for (let i = random.below(6); i > 0; i--) {
    const value = random.next() < 0.3 ? random.pick(['%', '%E0%A4%A', '%zz', '&&', '=']) : encoded(randomString(random));
    params.push(`${encoded(random.pick(keys))}=${value}`);
  }
  const headers: Record<string, string> = {};
  const contentType = random.pick(['application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data', '']);
  if (contentType) headers['content-type'] = contentType;
  if (random.next() < 0.3) {
    const basic = random.pick([
      Buffer.from(`${randomString(random)}:${randomString(random)}`).toString('base64'),
      Buffer.from('%E0%A4%A:%zz').toString('base64'),
      printable(randomString(random)),
      '!!!',
    ]);
    headers.authorization = printable(`Basic ${basic}`);
  }
  const body = contentType === 'application/json' ? JSON.stringify(randomJson(random)) : params.join('&');
  return { body, headers };
}

/** The WebSocket close codes a misbehaving client may get: protocol refusals, never an internal error. */
const INTERNAL_ERROR = 4500;

function randomSocketMessages(random: Random, authorization: string): (string | Buffer)[] {
  const init = JSON.stringify({ type: 'connection_init', payload: random.next() < 0.5 ? { authorization } : randomJson(random) });
  const messages: (string | Buffer)[] = random.next() < 0.8 ? [init] : [];
  for (let i = random.below(5) + 1; i > 0; i--) {
    const choice = random.below(6);
    if (choice === 0) messages.push(randomString(random));
    else if (choice === 1) messages.push(Buffer.from([random.below(256), random.below(256), random.below(256)]));
    else if (choice === 2) messages.push(JSON.stringify(randomJson(random)));
    else if (choice === 3) messages.push(init);
    else messages.push(JSON.stringify({ id: random.pick(['1', '1', randomString(random)]), type: random.pick(['subscribe', 'complete', 'ping', 'pong', randomString(random)]), payload: randomRequestBody(random) }));
  }
  return messages;
}

const [database] = databaseVariants();

describe(`fuzzing the public surface (FUZZ_SEED=${SEED})`, () => {
  let stack: TestStack;
  let owner: Member;
  before(async () => {
    stack = await startTestStack(database!, { AUTH_DEV_LOGIN: 'true', ANONYMOUS_REQUESTS_PER_SECOND: '100000', ANONYMOUS_BURST: '100000', WEBSOCKET_ANONYMOUS_CONNECTIONS_PER_IP: '1000' });
    owner = await signUp(stack, 'fuzz');
  });
  after(() => stack?.close());

  const tokenUrls = () => [stack.tokenUrl, stack.gatewayUrl.replace(/\/graphql$/, '/oauth/token')];

  test('/graphql over HTTP: JSON, GET and multipart requests of every shape answer without a 5xx', async () => {
    const random = seededRandom(SEED);
    const failures: string[] = [];
    for (let i = 0; i < 400; i++) {
      const headers: Record<string, string> = random.next() < 0.5 ? { ...owner.headers } : {};
      let init: RequestInit;
      let url = stack.gatewayUrl;
      const shape = random.below(4);
      if (shape === 0) {
        const params = new URLSearchParams();
        const body = randomRequestBody(random) as Record<string, unknown>;
        for (const [key, value] of Object.entries(typeof body === 'object' && body ? body : { query: body })) params.set(key, typeof value === 'string' ? value : JSON.stringify(value));
        url = `${url}?${params}`;
        init = { method: 'GET', headers };
      } else if (shape === 1) {
        const { body, contentType } = randomMultipart(random);
        init = { method: 'POST', headers: { ...headers, 'content-type': contentType, ...(random.next() < 0.8 ? { 'apollo-require-preflight': 'true' } : {}) }, body };
      } else {
        const contentType = random.pick(['application/json', 'application/json', 'application/graphql-response+json', 'text/plain', 'application/x-www-form-urlencoded']);
        const body = random.next() < 0.85 ? JSON.stringify(randomRequestBody(random)) : randomString(random);
        init = { method: random.pick(['POST', 'POST', 'PUT', 'PATCH']), headers: { ...headers, 'content-type': contentType, accept: random.pick(['application/json', 'application/graphql-response+json', '*/*', 'text/html']) }, body };
      }
      const response = await fetch(url, init);
      const text = await response.text();
      if (response.status >= 500) failures.push(`${response.status} for ${JSON.stringify(init).slice(0, 300)}: ${text.slice(0, 200)}`);
    }
    assert.deepEqual(failures, [], `seed ${SEED}`);
  });

  test('/oauth/token (tenancy and the gateway): every malformed request is a 4xx with an RFC 6749 error', async () => {
    const random = seededRandom(SEED + 1);
    const failures: string[] = [];
    for (let i = 0; i < 300; i++) {
      const { body, headers } = randomTokenRequest(random);
      for (const url of tokenUrls()) {
        const response = await fetch(url, { method: 'POST', headers, body });
        const text = await response.text();
        const error = response.status >= 400 ? (JSON.parse(text) as { error?: string }).error : undefined;
        if (response.status >= 500 || (response.status >= 400 && !error)) failures.push(`${url} ${response.status} for ${JSON.stringify({ body, headers }).slice(0, 300)}: ${text.slice(0, 200)}`);
      }
    }
    assert.deepEqual(failures, [], `seed ${SEED}`);
  });

  test('/graphql over WebSocket: whatever a client sends, no socket is closed as an internal error', async () => {
    const random = seededRandom(SEED + 2);
    const url = stack.gatewayUrl.replace(/^http/, 'ws');
    const failures: string[] = [];
    for (let i = 0; i < 120; i++) {
      const messages = randomSocketMessages(random, owner.headers.authorization!);
      // Now and then without the subprotocol, which the server refuses (4406).
      const socket = random.next() < 0.95 ? new WebSocket(url, 'graphql-transport-ws') : new WebSocket(url);
      await once(socket, 'open');
      const closed = once(socket, 'close').then(([code]) => code as number);
      for (const message of messages) socket.send(message);
      // Each socket gets a moment to answer, then is closed by the client if the server has not closed it.
      const code = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(0), 150))]);
      if (code === 0) socket.close(1000);
      const finalCode = code || (await closed);
      if (finalCode === INTERNAL_ERROR) failures.push(`closed with 4500 after ${JSON.stringify(messages.map(String)).slice(0, 400)}`);
    }
    assert.deepEqual(failures, [], `seed ${SEED}`);
  });

  test('oversized bodies and messages are refused before they are read whole: memory stays bounded', async () => {
    const big = 'x'.repeat(48 * 1024 * 1024);
    const httpBody = JSON.stringify({ query: '{ __typename }', variables: { pad: big } });
    const wsMessage = JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ __typename }', variables: { pad: big } } });
    global.gc?.();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 3; i++) {
      const response = await fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: httpBody });
      assert.equal(response.status, 413);
      await response.text();
      const socket = new WebSocket(stack.gatewayUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
      await once(socket, 'open');
      socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
      await once(socket, 'message');
      const closed = once(socket, 'close');
      socket.send(wsMessage);
      assert.equal((await closed)[0], 1009);
    }
    global.gc?.();
    const grownMb = (process.memoryUsage().rss - before) / 1024 / 1024;
    // Three 48 MB requests over each transport, read whole, would have grown the process by hundreds of MB.
    assert.ok(grownMb < 150, `memory grew by ${grownMb.toFixed(0)} MB`);
    const after = await fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) });
    assert.equal(after.status, 200);
  });
});
