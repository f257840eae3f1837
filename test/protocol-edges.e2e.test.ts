/**
 * The edges of the protocols, where a clear error belongs and a 500, a closed socket or unbounded memory did
 * not: documents whose operation cannot be picked, fragments nested past the depth limit, malformed and
 * cross-site multipart requests, errors over WebSocket, oversized and silent sockets, schema suggestions in
 * production, and subgraphs that are down.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { getIntrospectionQuery } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { createGatewayServer } from '@jarvis/gateway';
import type { RunningService } from '@jarvis/platform/http';
import { databaseVariants, freePort, waitFor } from '@jarvis/platform/testing';
import { addMember, respond, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const wsUrl = (stack: TestStack) => stack.gatewayUrl.replace(/^http/, 'ws');

/** What one operation over graphql-ws ended with: its results, or the errors it was refused with. */
function over(client: Client, payload: { query: string; variables?: Record<string, unknown>; operationName?: string }) {
  return new Promise<{ results: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] }[]; refused?: { message: string; extensions?: Record<string, unknown> }[] }>(
    (resolve, reject) => {
      const results: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] }[] = [];
      client.subscribe(payload, {
        next: (result) => void results.push(result as (typeof results)[number]),
        error: (error) => (Array.isArray(error) ? resolve({ results, refused: error }) : reject(error)),
        complete: () => resolve({ results }),
      });
    },
  );
}

function connect(stack: TestStack, caller?: Member, closed?: (event: { code: number }) => void): Client {
  return createClient({
    url: wsUrl(stack),
    webSocketImpl: WebSocket,
    connectionParams: caller ? { authorization: caller.headers.authorization } : {},
    retryAttempts: 0,
    lazy: false,
    on: closed ? { closed: closed as (event: unknown) => void } : {},
  });
}

/** A raw socket speaking graphql-transport-ws, for what a well-behaved client never sends. */
async function rawSocket(stack: TestStack): Promise<WebSocket> {
  const socket = new WebSocket(wsUrl(stack), 'graphql-transport-ws');
  await once(socket, 'open');
  return socket;
}

const closeCode = (socket: WebSocket) => once(socket, 'close').then(([code]) => code as number);

const nestedInlineFragments = (depth: number, type = 'Query', inner = '__typename') => `${`... on ${type} { `.repeat(depth)}${inner}${' }'.repeat(depth)}`;
const fragmentChain = (length: number) =>
  `{ ...F0 } ${Array.from({ length }, (_, i) => `fragment F${i} on Query { ${i + 1 < length ? `...F${i + 1}` : '__typename'} }`).join(' ')}`;

for (const variant of databaseVariants()) {
  describe(`protocol edges on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let viewer: Member;
    const clients: Client[] = [];
    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', WEBSOCKET_ANONYMOUS_CONNECTIONS_PER_IP: '3' });
      owner = await signUp(stack, 'edges');
      viewer = await addMember(stack, owner, `viewer@${owner.slug}.test`, 'viewer');
    });
    after(async () => {
      await Promise.all(clients.map((client) => client.dispose()));
      await stack?.close();
    });
    const client = (caller?: Member, closed?: (event: { code: number }) => void) => {
      const made = connect(stack, caller, closed);
      clients.push(made);
      return made;
    };

    test('a document whose operation cannot be picked: 400 OPERATION_RESOLUTION_FAILURE, over HTTP and WebSocket', async () => {
      const document = 'query A { __typename } query B { permissions { name } }';
      for (const operationName of [undefined, 'Nope']) {
        const response = await fetch(stack.gatewayUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...owner.headers },
          body: JSON.stringify({ query: document, operationName }),
        });
        const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(body.errors[0]!.extensions.code, 'OPERATION_RESOLUTION_FAILURE');
        assert.match(body.errors[0]!.message, operationName ? /Unknown operation named "Nope"/ : /Must provide operation name/);

        const { refused } = await over(client(owner), { query: document, ...(operationName ? { operationName } : {}) });
        assert.equal(refused?.[0]?.extensions?.code, 'OPERATION_RESOLUTION_FAILURE');
      }
      const picked = await respond(stack, owner, document.replace('query A { __typename } ', ''));
      assert.equal(picked.status, 200);
    });

    test('a subscription over HTTP: 400 saying where subscriptions are served, not a 500', async () => {
      for (const [query, operationName] of [
        ['subscription($id: ID!) { answerStream(messageId: $id) { seq } }', undefined],
        ['query Q { __typename } subscription S($id: ID!) { answerStream(messageId: $id) { seq } }', 'S'],
      ] as const) {
        const response = await fetch(stack.gatewayUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...owner.headers },
          body: JSON.stringify({ query, operationName, variables: { id: '00000000-0000-4000-8000-000000000000' } }),
        });
        const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(body.errors[0]!.extensions.code, 'BAD_REQUEST');
        assert.match(body.errors[0]!.message, /WebSocket/);
      }
    });

    test('fragments nested past the depth limit are refused before planning: 400, never a 500', async () => {
      const introspecting = [
        `{ __schema { ${nestedInlineFragments(1_900, '__Schema', 'queryType { name }')} } }`,
        `{ __type(name: "Query") { ${nestedInlineFragments(1_900, '__Type', 'name')} } }`,
      ];
      const deep = [`{ ${nestedInlineFragments(13)} }`, `{ ${nestedInlineFragments(1_900)} }`, fragmentChain(13), fragmentChain(1_200), ...introspecting];
      for (const query of deep) {
        const response = await fetch(stack.gatewayUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
          body: JSON.stringify({ query }),
        });
        const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
        assert.equal(response.status, 400, `${query.slice(0, 40)}: ${JSON.stringify(body).slice(0, 300)}`);
        assert.ok(['GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_PARSE_FAILED'].includes(body.errors[0]!.extensions.code));
        const { refused } = await over(client(owner), { query });
        assert.ok(refused?.length, 'refused over WebSocket too');
      }
      // Within the limit, fragments are fine.
      assert.deepEqual((await respond(stack, undefined, `{ ${nestedInlineFragments(10)} }`)).data, { __typename: 'Query' });
      // Introspection (which the field depth exempts) is refused only for the nesting of fragments.
      assert.ok((await respond(stack, undefined, getIntrospectionQuery())).data);
    });

    test('malformed or cross-site multipart requests: 400 with a clear error, never a 500', async () => {
      const preflight = { 'apollo-require-preflight': 'true' };
      const operations = JSON.stringify({ query: 'mutation($f: Upload!) { __typename }', variables: { f: null } });
      const goodForm = () => {
        const form = new FormData();
        form.append('operations', operations);
        form.append('map', JSON.stringify({ 0: ['variables.f'] }));
        form.append('0', new Blob(['hello']), 'a.txt');
        return form;
      };
      const truncated = `--XYZ\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n--XYZ\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0": ["vari`;
      const cases: [string, RequestInit][] = [
        ['without a boundary', { headers: { 'content-type': 'multipart/form-data', ...preflight }, body: 'whatever' }],
        ['truncated mid-part', { headers: { 'content-type': 'multipart/form-data; boundary=XYZ', ...preflight }, body: truncated }],
        ['with a JSON body', { headers: { 'content-type': 'multipart/form-data; boundary=XYZ', ...preflight }, body: operations }],
        ['with operations that are not an object', { headers: { 'content-type': 'multipart/form-data; boundary=XYZ', ...preflight }, body: `--XYZ\r\nContent-Disposition: form-data; name="operations"\r\n\r\n[1,2]\r\n--XYZ--\r\n` }],
        ['cross-site: no preflight-forcing header', { body: goodForm() }],
      ];
      for (const [name, init] of cases) {
        const response = await fetch(stack.gatewayUrl, { method: 'POST', ...init, headers: { ...owner.headers, ...(init.headers as Record<string, string>) } });
        const body = (await response.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
        assert.equal(response.status, 400, `${name}: ${response.status} ${JSON.stringify(body)}`);
        assert.equal(body.errors?.[0]?.extensions?.code, 'BAD_REQUEST', name);
        if (name.startsWith('cross-site')) assert.match(body.errors![0]!.message, /apollo-require-preflight/);
      }
    });

    test('over WebSocket, a refused field, a field over its limit and a bad variable come back as errors; the socket stays open', async () => {
      const closes: number[] = [];
      const socket = client(viewer, (event) => closes.push(event.code));
      const unauthorized = await over(socket, { query: `{ tenant { slug serviceAccounts { id } } }` });
      assert.deepEqual(unauthorized.results[0]?.data, { tenant: { slug: owner.slug, serviceAccounts: null } });
      assert.equal(unauthorized.results[0]?.errors?.[0]?.extensions?.code, 'UNAUTHORIZED_FIELD_OR_TYPE');

      const anonymous = client(undefined, (event) => closes.push(event.code));
      const signUpInput = (slug: string) => ({ input: { name: slug, slug, owner: { email: `a@${slug}.test`, name: 'A' } } });
      let limited: Awaited<ReturnType<typeof over>> | undefined;
      for (let i = 0; i < 25 && !limited?.refused && !limited?.results[0]?.errors; i++) {
        limited = await over(anonymous, { query: `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }`, variables: signUpInput(`ws-${i}-${Date.now()}`) });
      }
      const codes = [...(limited?.refused ?? []), ...(limited?.results[0]?.errors ?? [])].map((e) => e.extensions?.code);
      assert.ok(codes.includes('RATE_LIMITED'), JSON.stringify(limited));

      const badVariable = await over(socket, { query: `query($n: Int) { tenant { conversations(first: $n) { id } } }`, variables: { n: 'many' } });
      assert.ok(badVariable.refused?.length || badVariable.results[0]?.errors?.length);
      assert.deepEqual((await over(socket, { query: `{ tenant { slug } }` })).results[0]?.data, { tenant: { slug: owner.slug } });
      assert.deepEqual(closes, [], 'no socket was closed');
      await anonymous.dispose();
    });

    test('a WebSocket message larger than an HTTP body is refused (1009) before it is read whole; the gateway goes on', async () => {
      const socket = await rawSocket(stack);
      socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: owner.headers.authorization } }));
      await once(socket, 'message');
      const closed = closeCode(socket);
      socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: `{ __typename }`, variables: { pad: 'x'.repeat(3 * 1024 * 1024) } } }));
      assert.equal(await closed, 1009);
      assert.equal((await respond(stack, owner, `{ tenant { slug } }`)).status, 200);
    });

    test('a socket that never sends connection_init is closed (4408); an address holds few sockets without credentials', async () => {
      const silent = await rawSocket(stack);
      const started = Date.now();
      assert.equal(await closeCode(silent), 4408);
      assert.ok(Date.now() - started < 10_000);

      const held = await Promise.all([1, 2, 3].map(() => rawSocket(stack)));
      const refused = new WebSocket(wsUrl(stack), 'graphql-transport-ws');
      const [, response] = (await once(refused, 'unexpected-response')) as [unknown, { statusCode: number }];
      assert.equal(response.statusCode, 429);
      // One signs in to its tenant: its slot is free again.
      held[0]!.send(JSON.stringify({ type: 'connection_init', payload: { authorization: owner.headers.authorization } }));
      await once(held[0]!, 'message');
      const another = await rawSocket(stack);
      for (const socket of [...held, another]) socket.close();
    });

    test('a subgraph that cannot be reached is named (SUBGRAPH_UNAVAILABLE), never an internal error, and the gateway is not ready', async () => {
      const deadPort = await freePort();
      const urls = { ...stack.subgraphUrls, chat: `http://127.0.0.1:${deadPort}/graphql` };
      const config = { ...stack.config, SUBGRAPH_URLS: urls, JWT_ISSUER: undefined, JWT_AUDIENCE: undefined, JWT_JWKS_URL: undefined };
      const tenancy = stack.subgraphUrls.tenancy!.replace(/\/graphql$/, '');
      const gateway: RunningService = await (await createGatewayServer({
        ...config,
        JWT_ISSUER: stack.config.TOKEN_ISSUER,
        JWT_AUDIENCE: stack.config.TOKEN_AUDIENCE,
        JWT_JWKS_URL: `${tenancy}/.well-known/jwks.json`,
      })).start(0);
      try {
        const ready = await fetch(gateway.url.replace(/\/graphql$/, '/readyz'));
        assert.equal(ready.status, 503);
        const response = await fetch(gateway.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...owner.headers },
          body: JSON.stringify({ query: `{ tenant { slug conversations { title } } }` }),
        });
        const body = (await response.json()) as { data: { tenant: { slug: string; conversations: unknown } }; errors: { message: string; extensions: Record<string, unknown> }[] };
        assert.equal(body.data.tenant.slug, owner.slug);
        assert.equal(body.data.tenant.conversations, null);
        assert.deepEqual(body.errors.map((e) => [e.extensions.code, e.extensions.serviceName]), [['SUBGRAPH_UNAVAILABLE', 'chat']]);
        assert.doesNotMatch(JSON.stringify(body), /fetch failed|ECONNREFUSED/);
        // The healthy stack's own gateway is ready.
        await waitFor(async () => (await fetch(stack.gatewayUrl.replace(/\/graphql$/, '/readyz'))).status === 200, 'the stack gateway ready');
      } finally {
        await gateway.close();
      }
    });
  });
}

describe('in production, errors suggest nothing the caller did not write', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!, { NODE_ENV: 'production', AUTH_DEV_LOGIN: 'true' });
  });
  after(() => stack?.close());

  test('no "Did you mean" over HTTP or WebSocket, for fields, mutations, arguments and enum values', async () => {
    const documents = [
      `{ tenan { id } }`,
      `mutation { createTenan(input: {}) { tenant { id } } }`,
      `query($p: Plan) { permissions { nam } }`,
      `mutation { createTenant(input: { name: "x", slug: "x", plan: FRE, owner: { email: "a@b.c", name: "a" } }) { tenant { id } } }`,
    ];
    const ws = connect(stack);
    try {
      for (const query of documents) {
        const http = await respond(stack, undefined, query);
        assert.ok(http.errors?.length, query);
        const { refused, results } = await over(ws, { query });
        const messages = [...(http.errors ?? []), ...(refused ?? []), ...results.flatMap((r) => r.errors ?? [])].map((e) => e.message);
        assert.ok(messages.length >= 2, query);
        for (const message of messages) assert.doesNotMatch(message, /Did you mean/, `${query}: ${message}`);
      }
      const variable = await respond(stack, undefined, `query($p: Plan) { permissions { name } }`, { p: 'FRE' });
      assert.doesNotMatch(JSON.stringify(variable.errors), /Did you mean/);
    } finally {
      await ws.dispose();
    }
  });
});
