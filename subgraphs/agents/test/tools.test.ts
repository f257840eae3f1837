/**
 * The tools a run uses to reach the outside world, against real servers on this machine only: the DSL's
 * `call: http` and `call: jarvis.mcp` through the outbound guard (what is sent, what comes back, the errors a
 * workflow catches), what the guard refuses — with the server that would have answered seeing nothing — and the
 * allow-list of an agent's HTTP tools.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { OutboundGuard } from '@jarvis/platform/outbound';
import { allowedBy, ERROR_TYPES, httpCall, ToolError } from '../src/tools/http.ts';
import { mcpCall, mcpListTools } from '../src/tools/mcp.ts';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface LocalServer {
  origin: string;
  port: number;
  /** Every request, with its body, in order. */
  received: Received[];
  connections: number;
  close(): Promise<void>;
}

/** An HTTP server on `host` that records the connections it accepts and the requests it reads. */
async function localServer(host: string, handle: (request: Received, response: ServerResponse, raw: IncomingMessage) => void | Promise<void>): Promise<LocalServer> {
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const received = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') };
    local.received.push(received);
    await handle(received, response, request);
  });
  server.on('connection', () => local.connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const local: LocalServer = {
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    received: [],
    connections: 0,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return local;
}

const json = (response: ServerResponse, status: number, value: unknown): void =>
  void response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(value));

/** What the guard refused, as a workflow's `catch` sees it. */
const refusedTool = (pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof ToolError, `a ToolError, not ${String(error)}`);
  assert.equal(error.code, 'OUTBOUND_REFUSED');
  assert.equal(error.type, ERROR_TYPES.authorization);
  assert.equal(error.status, 403);
  assert.match(error.message, pattern);
  return true;
};

/** A server with the routes the HTTP tests call. */
function api(request: Received, response: ServerResponse): void {
  const url = new URL(request.url, 'http://api.local');
  switch (url.pathname) {
    case '/items':
      return json(response, 200, { query: Object.fromEntries(url.searchParams) });
    case '/orders':
      return json(response, 201, { id: 'order-1', received: request.headers['content-type'] === 'application/json' ? JSON.parse(request.body) : request.body });
    case '/text':
      return void response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('hello, world');
    case '/bytes':
      return void response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from([0, 159, 146, 150, 255]));
    case '/empty':
      return void response.writeHead(204).end();
    case '/unavailable':
      return void response.writeHead(503, { 'content-type': 'text/plain' }).end(`maintenance ${'x'.repeat(5_000)}`);
    case '/redirect':
      return void response.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
    case '/silent':
      return; // never answers
    default:
      return json(response, 404, { error: 'no such route' });
  }
}

describe('call: http through a guard the operator lets reach 127.0.0.1', () => {
  const guard = new OutboundGuard({ allowHttp: true, allowedHosts: ['127.0.0.1'] });
  let server: LocalServer;

  before(async () => {
    server = await localServer('127.0.0.1', api);
  });
  after(async () => {
    await server.close();
    await guard.close();
  });

  test('a GET with query parameters added to the endpoint\'s own: the parsed JSON is the output', async () => {
    const content = await httpCall(guard, { method: 'get', endpoint: `${server.origin}/items?fixed=1`, query: { q: 'red shoes', limit: 5, exact: true } });
    assert.deepEqual(content, { query: { fixed: '1', q: 'red shoes', limit: '5', exact: 'true' } });
    const received = server.received.at(-1)!;
    assert.equal(received.method, 'GET');
    assert.equal(received.url, '/items?fixed=1&q=red+shoes&limit=5&exact=true');
  });

  test('a POST with an object body sends JSON; output response is the DSL\'s HTTP response, credentials left out', async () => {
    const response = await httpCall(guard, {
      method: 'post',
      endpoint: { uri: `${server.origin}/orders` },
      headers: { 'x-trace': 'trace-1', authorization: 'Bearer s3cret' },
      body: { sku: 'A-1', quantity: 2 },
      output: 'response',
    });
    const received = server.received.at(-1)!;
    assert.equal(received.method, 'POST');
    assert.equal(received.headers['content-type'], 'application/json');
    assert.equal(received.headers['x-trace'], 'trace-1');
    assert.equal(received.headers.authorization, 'Bearer s3cret');
    assert.deepEqual(JSON.parse(received.body), { sku: 'A-1', quantity: 2 });
    const { headers, ...rest } = response as { headers: Record<string, string> };
    assert.equal(headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(rest, {
      request: { method: 'POST', uri: `${server.origin}/orders`, headers: { 'content-type': 'application/json', 'x-trace': 'trace-1' } },
      statusCode: 201,
      content: { id: 'order-1', received: { sku: 'A-1', quantity: 2 } },
    });
  });

  test('a string body is sent as it is', async () => {
    await httpCall(guard, { method: 'PUT', endpoint: `${server.origin}/orders`, headers: { 'content-type': 'text/csv' }, body: 'sku,quantity\nA-1,2' });
    const received = server.received.at(-1)!;
    assert.deepEqual([received.method, received.headers['content-type'], received.body], ['PUT', 'text/csv', 'sku,quantity\nA-1,2']);
  });

  test('output content is text for text, base64 for bytes that are not text, null for no body; raw is base64', async () => {
    assert.equal(await httpCall(guard, { method: 'GET', endpoint: `${server.origin}/text` }), 'hello, world');
    assert.equal(await httpCall(guard, { method: 'GET', endpoint: `${server.origin}/text`, output: 'raw' }), Buffer.from('hello, world').toString('base64'));
    assert.equal(await httpCall(guard, { method: 'GET', endpoint: `${server.origin}/bytes`, output: 'raw' }), 'AJ+Slv8=');
    assert.equal(await httpCall(guard, { method: 'GET', endpoint: `${server.origin}/bytes` }), 'AJ+Slv8=');
    assert.equal(await httpCall(guard, { method: 'GET', endpoint: `${server.origin}/items`, output: 'raw' }), Buffer.from('{"query":{}}').toString('base64'));
    assert.equal(await httpCall(guard, { method: 'DELETE', endpoint: `${server.origin}/empty` }), null);
  });

  test('a 503 is a communication error with that status, quoting at most 500 characters of the body', async () => {
    await assert.rejects(httpCall(guard, { method: 'GET', endpoint: `${server.origin}/unavailable?token=secret-in-query` }), (error: unknown) => {
      assert.ok(error instanceof ToolError);
      assert.deepEqual([error.code, error.status, error.type], ['HTTP_ERROR', 503, 'https://serverlessworkflow.io/spec/1.0.0/errors/communication']);
      assert.match(error.message, /^GET http:\/\/127\.0\.0\.1:\d+\/unavailable answered 503 Service Unavailable: maintenance x+…$/);
      assert.ok(!error.message.includes('secret-in-query'), 'no query in the message');
      assert.ok(error.message.length < 600, `${error.message.length} characters`);
      return true;
    });
    await assert.rejects(httpCall(guard, { method: 'GET', endpoint: `${server.origin}/nowhere` }), { code: 'HTTP_ERROR', status: 404 });
  });

  test('arguments no request can be made of, and a server that does not answer in time', async () => {
    await assert.rejects(httpCall(guard, { method: 'GET', endpoint: 'not a url' }), { code: 'INVALID_ARGUMENTS', status: 400, type: ERROR_TYPES.configuration });
    await assert.rejects(httpCall(guard, { method: 'GET', endpoint: `${server.origin}/items`, body: { a: 1 } }), { code: 'INVALID_ARGUMENTS' });
    await assert.rejects(httpCall(guard, { method: 'GET /x', endpoint: `${server.origin}/items` }), { code: 'INVALID_ARGUMENTS' });
    const impatient = new OutboundGuard({ allowHttp: true, allowedHosts: ['127.0.0.1'], timeoutMs: 300 });
    await assert.rejects(httpCall(impatient, { method: 'GET', endpoint: `${server.origin}/silent` }), {
      code: 'OUTBOUND_FAILED',
      status: 408,
      type: ERROR_TYPES.timeout,
      message: 'endpoint did not answer within 0.3 s',
    });
    // the caller's own abort stays the caller's
    await assert.rejects(httpCall(guard, { method: 'GET', endpoint: `${server.origin}/silent` }, AbortSignal.timeout(100)), { name: 'TimeoutError' });
    await impatient.close();
  });
});

describe('what a default guard refuses', () => {
  const guard = new OutboundGuard({ allowHttp: true });
  let v4: LocalServer;
  let v6: LocalServer;

  before(async () => {
    v4 = await localServer('127.0.0.1', api);
    v6 = await localServer('::1', api);
  });
  after(async () => {
    await v4.close();
    await v6.close();
    await guard.close();
  });

  test('loopback, private and link-local addresses, literal or resolved: refused, and nothing reaches the server', async () => {
    const refusals: [string, RegExp][] = [
      [`http://127.0.0.1:${v4.port}/items`, /^endpoint points to a loopback address$/],
      ['http://10.1.2.3/', /^endpoint points to a private address$/],
      ['http://169.254.169.254/latest/meta-data/', /^endpoint points to a link-local address$/],
      [`http://[::1]:${v6.port}/items`, /^endpoint points to a loopback address$/],
      [`http://localhost:${v4.port}/items`, /^endpoint resolves to a loopback address$/],
    ];
    for (const [endpoint, reason] of refusals) {
      await assert.rejects(httpCall(guard, { method: 'GET', endpoint }), refusedTool(reason), endpoint);
      await assert.rejects(httpCall(guard, { method: 'POST', endpoint: { uri: endpoint }, body: { a: 1 } }), refusedTool(reason), endpoint);
    }
    assert.deepEqual([v4.connections, v4.received.length, v6.connections, v6.received.length], [0, 0, 0, 0]);
  });

  test('a host the operator allows (standing for a public name) that redirects inside is refused at the redirect; the target sees nothing', async () => {
    // The guard resolves names with the system's resolver (no injectable lookup), and nothing off this machine may
    // be reached: `localhost` allowed by name stands for a public host. The name's permission is the name's only —
    // a redirect to an address is judged by that address, as a public host's redirect would be.
    const publicGuard = new OutboundGuard({ allowHttp: true, allowedHosts: ['localhost'] });
    const redirector = await localServer('127.0.0.1', api);
    const target = await localServer('127.0.0.1', api);
    try {
      const first = `http://localhost:${redirector.port}`;
      assert.deepEqual(await httpCall(publicGuard, { method: 'GET', endpoint: `${first}/items` }), { query: {} }, 'the first hop is reachable');
      const inside: [string, RegExp][] = [
        [`http://127.0.0.1:${target.port}/items`, /loopback/],
        ['http://169.254.169.254/latest/meta-data/', /link-local/],
        ['http://10.0.0.1/', /private/],
        [`http://[::1]:${v6.port}/items`, /loopback/],
      ];
      for (const [to, range] of inside) {
        const endpoint = `${first}/redirect?to=${encodeURIComponent(to)}`;
        await assert.rejects(
          httpCall(publicGuard, { method: 'GET', endpoint }),
          refusedTool(new RegExp(`^endpoint redirects to a location that points to an? ${range.source} address$`)),
          to,
        );
      }
      assert.equal(redirector.received.filter(({ url }) => url.startsWith('/redirect')).length, inside.length, 'each first hop was made');
      assert.deepEqual([target.connections, target.received.length, v6.received.length], [0, 0, 0], 'no redirect target was reached');
    } finally {
      await redirector.close();
      await target.close();
      await publicGuard.close();
    }
  });
});

describe("allowedBy: an agent's HTTP tools", () => {
  const tools = [
    { url: 'https://api.example.com/items/{id}', methods: ['GET', 'PUT'] },
    { url: 'https://api.example.com/files/{name}.{ext}/meta', methods: ['get'] },
    { url: 'https://api.example.com/search?q={q}', methods: ['GET'] },
  ];

  test('a URL filling the template, with a method listed (any case), is allowed', () => {
    for (const url of [
      'https://api.example.com/items/42',
      'https://api.example.com/items/a%20b',
      'https://API.example.com:443/items/42',
      'https://api.example.com/items/42?expand=true',
      'https://api.example.com/files/report.pdf/meta',
      'https://api.example.com/search?q=red%20shoes',
    ]) {
      assert.equal(allowedBy(tools, 'GET', url), true, url);
    }
    assert.equal(allowedBy(tools, 'get', 'https://api.example.com/items/42'), true);
    assert.equal(allowedBy(tools, 'put', 'https://api.example.com/items/42'), true);
  });

  test('dot segments and slashes, encoded or not, do not fill a variable', () => {
    for (const url of [
      'https://api.example.com/items/../admin',
      'https://api.example.com/items/..',
      'https://api.example.com/items/%2e%2e',
      'https://api.example.com/items/%2E%2E/admin',
      'https://api.example.com/items/.',
      'https://api.example.com/items/a/b',
      'https://api.example.com/items/a%2Fb',
      'https://api.example.com/items/..%2Fadmin',
      'https://api.example.com/items/a%5Cb',
      'https://api.example.com/items/a\\b',
      'https://api.example.com/items/',
      'https://api.example.com/items',
      'https://api.example.com/files/..%2f..%2fetc.passwd/meta',
      'https://api.example.com/search?q=shoes&admin=true',
      'https://api.example.com/search?q=a%26admin%3Dtrue',
    ]) {
      assert.equal(allowedBy(tools, 'GET', url), false, url);
    }
  });

  test('another scheme, host or port, credentials, a method not listed, or no URL: refused', () => {
    for (const url of [
      'http://api.example.com/items/42',
      'https://evil.example.com/items/42',
      'https://api.example.com.evil.test/items/42',
      'https://api.example.com:8443/items/42',
      'https://user:pw@api.example.com/items/42',
      'not a url',
    ]) {
      assert.equal(allowedBy(tools, 'GET', url), false, url);
    }
    assert.equal(allowedBy(tools, 'DELETE', 'https://api.example.com/items/42'), false);
    assert.equal(allowedBy(tools, 'POST', 'https://api.example.com/search?q=x'), false);
    assert.equal(allowedBy([], 'GET', 'https://api.example.com/items/42'), false);
  });

  test('a template with a variable in its host, or an operator the DSL does not know, allows nothing', () => {
    assert.equal(allowedBy([{ url: 'https://{tenant}.example.com/items', methods: ['GET'] }], 'GET', 'https://acme.example.com/items'), false);
    assert.equal(allowedBy([{ url: 'https://api.example.com/{+path}', methods: ['GET'] }], 'GET', 'https://api.example.com/a'), false);
    assert.equal(allowedBy([{ url: 'https://api.example.com/items', methods: ['GET'] }], 'GET', 'https://api.example.com/items'), true);
  });
});

/** An MCP server made with the SDK: `lookup` echoes its arguments, `broken` fails, `slow` takes two seconds. */
function toolServer(): McpServer {
  const server = new McpServer({ name: 'jarvis-test-tools', version: '1.0.0' });
  server.registerTool(
    'lookup',
    { description: 'Looks an item up by id', inputSchema: { id: z.string(), verbose: z.boolean().optional() } },
    async (args) => ({ content: [{ type: 'text', text: JSON.stringify(args) }], structuredContent: args }),
  );
  server.registerTool('broken', { description: 'Always fails' }, async () => ({
    content: [{ type: 'text', text: `the upstream catalogue is down ${'!'.repeat(2_000)}` }],
    isError: true,
  }));
  server.registerTool('slow', { description: 'Answers after two seconds' }, async () => {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    return { content: [{ type: 'text', text: 'late' }] };
  });
  return server;
}

/** The MCP server on node:http at /mcp: stateless (a server and transport per POST, 405 otherwise) or with sessions. */
async function mcpHost(mode: 'stateless' | 'stateful') {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const host = await localServer('127.0.0.1', async (request, response, raw) => {
    const body = request.body ? JSON.parse(request.body) : undefined;
    if (mode === 'stateless') {
      if (request.method !== 'POST') return void response.writeHead(405, { allow: 'POST' }).end();
      const server = toolServer();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      response.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      return transport.handleRequest(raw, response, body);
    }
    const id = request.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (!transport) {
      if (id !== undefined || request.method !== 'POST') return json(response, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sessionId) => void sessions.set(sessionId, created),
        onsessionclosed: (sessionId) => void sessions.delete(sessionId),
      });
      await toolServer().connect(created);
      transport = created;
    }
    return transport.handleRequest(raw, response, body);
  });
  return { ...host, server: `${host.origin}/mcp`, sessions };
}

describe('call: jarvis.mcp with the SDK client, through the guard', () => {
  const guard = new OutboundGuard({ allowHttp: true, allowedHosts: ['127.0.0.1'] });
  let host: Awaited<ReturnType<typeof mcpHost>>;

  before(async () => {
    host = await mcpHost('stateless');
  });
  after(async () => {
    await host.close();
    await guard.close();
  });

  test('a tool is called with its arguments: content and structured content come back', async () => {
    const result = await mcpCall(guard, { server: host.server, tool: 'lookup', arguments: { id: '42', verbose: true } }, { headers: { 'x-api-key': 'tenant-key' } });
    assert.deepEqual(result, {
      content: [{ type: 'text', text: '{"id":"42","verbose":true}' }],
      structuredContent: { id: '42', verbose: true },
      isError: false,
    });
    assert.ok(host.received.every(({ headers }) => headers['x-api-key'] === 'tenant-key'), 'the headers go with every request');
    assert.deepEqual(
      host.received.map(({ method, body }) => `${method} ${body ? JSON.parse(body).method : ''}`),
      ['POST initialize', 'POST notifications/initialized', 'POST tools/list', 'POST tools/call'],
      'no GET for a standing SSE stream reaches the server',
    );
  });

  test('the tools the server lists, as the agent loop offers them to a model', async () => {
    const tools = await mcpListTools(guard, host.server, {});
    assert.deepEqual(tools.map(({ name }) => name).sort(), ['broken', 'lookup', 'slow']);
    const lookup = tools.find(({ name }) => name === 'lookup')!;
    assert.equal(lookup.description, 'Looks an item up by id');
    assert.equal(lookup.inputSchema.type, 'object');
    assert.deepEqual(Object.keys(lookup.inputSchema.properties ?? {}), ['id', 'verbose']);
    assert.deepEqual(lookup.inputSchema.required, ['id']);
  });

  test('a result with isError is TOOL_FAILED; a tool the server does not list is TOOL_NOT_FOUND', async () => {
    await assert.rejects(mcpCall(guard, { server: host.server, tool: 'broken' }, {}), (error: unknown) => {
      assert.ok(error instanceof ToolError);
      assert.deepEqual([error.code, error.status, error.type], ['TOOL_FAILED', 500, ERROR_TYPES.communication]);
      assert.match(error.message, /^tool broken failed: the upstream catalogue is down !+…$/);
      assert.ok(error.message.length < 600);
      return true;
    });
    const before = host.received.length;
    await assert.rejects(mcpCall(guard, { server: host.server, tool: 'delete_everything', arguments: {} }, {}), {
      code: 'TOOL_NOT_FOUND',
      status: 400,
      type: ERROR_TYPES.configuration,
      message: 'the server has no tool delete_everything',
    });
    const bodies = host.received.slice(before).map(({ body }) => JSON.parse(body).method);
    assert.ok(!bodies.includes('tools/call'), 'the unknown tool is not called');
  });

  test('a call that takes longer than its time is a timeout; the caller\'s abort stays the caller\'s', async () => {
    await assert.rejects(mcpCall(guard, { server: host.server, tool: 'slow' }, { timeoutMs: 300 }), {
      code: 'OUTBOUND_FAILED',
      status: 408,
      type: ERROR_TYPES.timeout,
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('run cancelled')), 300);
    await assert.rejects(mcpCall(guard, { server: host.server, tool: 'slow' }, { signal: controller.signal }), { message: 'run cancelled' });
  });

  test('with a default guard the same server is refused, and receives nothing', async () => {
    const defaultGuard = new OutboundGuard({ allowHttp: true });
    const before = [host.connections, host.received.length];
    try {
      await assert.rejects(mcpCall(defaultGuard, { server: host.server, tool: 'lookup', arguments: { id: '1' } }, {}), refusedTool(/^server points to a loopback address$/));
      await assert.rejects(mcpListTools(defaultGuard, host.server, {}), refusedTool(/^server points to a loopback address$/));
      const byName = host.server.replace('127.0.0.1', 'localhost');
      await assert.rejects(mcpCall(defaultGuard, { server: byName, tool: 'lookup' }, {}), refusedTool(/^server resolves to a loopback address$/));
    } finally {
      await defaultGuard.close();
    }
    assert.deepEqual([host.connections, host.received.length], before);
  });
});

describe('call: jarvis.mcp against a server that keeps sessions', () => {
  const guard = new OutboundGuard({ allowHttp: true, allowedHosts: ['127.0.0.1'] });
  let host: Awaited<ReturnType<typeof mcpHost>>;

  before(async () => {
    host = await mcpHost('stateful');
  });
  after(async () => {
    await host.close();
    await guard.close();
  });

  test('the session the server opens is used for every request and ended with a DELETE', async () => {
    const result = await mcpCall(guard, { server: host.server, tool: 'lookup', arguments: { id: '7' } }, {});
    assert.deepEqual(result.structuredContent, { id: '7' });
    const [initialize, ...rest] = host.received;
    assert.equal(initialize!.headers['mcp-session-id'], undefined);
    const session = rest[0]!.headers['mcp-session-id'];
    assert.ok(session);
    assert.deepEqual(
      rest.map(({ method, headers }) => [method, headers['mcp-session-id']]),
      [
        ['POST', session],
        ['POST', session],
        ['POST', session],
        ['DELETE', session],
      ],
    );
    assert.equal(host.sessions.size, 0, 'the server closed the session');
  });
});
