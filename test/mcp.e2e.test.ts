/**
 * The gateway's MCP endpoint (/mcp, Streamable HTTP, stateless) spoken to by the SDK's own client, on the
 * embedded database and on PostgreSQL: the fixed tools and a tool per published workflow are listed; searching
 * finds the caller's own passages and nobody else's; asking waits for a cited answer; a workflow tool starts a
 * run that get_run follows to DONE; bad input, missing permissions and missing credentials are refused as
 * GraphQL refuses them; and a tool call passes each gateway policy once, as one GraphQL operation.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { PLAN_QUOTAS } from '@jarvis/platform/contracts';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { addMember, as, serviceKey, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const WORKFLOW = `document:
  dsl: '1.0.0'
  namespace: e2e
  name: brief
  version: '1.0.0'
  title: Brief
  summary: Notes a topic down
input:
  schema:
    format: json
    document:
      type: object
      required: [topic]
      properties:
        topic: { type: string }
do:
  - note:
      set:
        topic: \${ .topic }
        noted: true
`;

const HANDBOOK = `# Travel policy

## Hotels

- Hotels are booked through the travel desk.
- The nightly limit is 180 euros in most cities.
`;

const RECIPES = `# Soup

Simmer the vegetables for forty minutes, then season the soup with salt.
`;

interface Passage {
  text: string;
  score: number;
  document: { id: string; title: string };
  knowledgeBase: { id: string; name: string };
}

const textOf = (result: CallToolResult) => result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');

for (const variant of databaseVariants()) {
  describe(`MCP at /mcp, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let neighbour: Member;
    let viewer: Member;
    let handbook: string;
    let recipes: string;
    let mcpUrl: URL;
    const clients: Client[] = [];

    const knowledgeBase = async (member: Member, name: string, title: string, content: string) => {
      const { createKnowledgeBase } = await as<{ createKnowledgeBase: { id: string } }>(
        stack,
        member,
        `mutation($input: CreateKnowledgeBaseInput!) { createKnowledgeBase(input: $input) { id } }`,
        { input: { name, memberAccess: 'READ' } },
      );
      const { addDocument } = await as<{ addDocument: { id: string } }>(stack, member, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
        input: { knowledgeBaseId: createKnowledgeBase.id, title, content },
      });
      await waitFor(
        async () => (await as<{ document: { status: string } }>(stack, member, `query($id: ID!) { document(id: $id) { status } }`, { id: addDocument.id })).document,
        `${title} to be READY`,
        { until: (document) => document.status === 'READY' || document.status === 'FAILED', timeoutMs: 30_000, intervalMs: 50 },
      ).then((document) => assert.equal(document.status, 'READY'));
      return createKnowledgeBase.id;
    };

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true' });
      mcpUrl = new URL('/mcp', stack.gatewayUrl);
      owner = await signUp(stack, 'mcp', { pastGateway: true });
      neighbour = await signUp(stack, 'mcp-next-door', { pastGateway: true });
      viewer = await addMember(stack, owner, `viewer@${owner.slug}.test`, 'viewer');
      const { createDefinition } = await as<{ createDefinition: { id: string } }>(
        stack,
        owner,
        `mutation($input: CreateDefinitionInput!) { createDefinition(input: $input) { id } }`,
        { input: { name: 'brief', kind: 'WORKFLOW', source: WORKFLOW } },
      );
      await as(stack, owner, `mutation($id: ID!) { publishDefinition(input: { definitionId: $id, version: 1 }) { name } }`, { id: createDefinition.id });
      // Created, never published: no tool.
      await as(stack, owner, `mutation($input: CreateDefinitionInput!) { createDefinition(input: $input) { id } }`, {
        input: { name: 'draft', kind: 'WORKFLOW', source: WORKFLOW.replace('name: brief', 'name: draft') },
      });
      [handbook, recipes] = await Promise.all([knowledgeBase(owner, 'Handbook', 'Travel policy', HANDBOOK), knowledgeBase(neighbour, 'Recipes', 'Soup', RECIPES)]);
    });
    after(async () => {
      await Promise.all(clients.map((client) => client.close()));
      await stack?.close();
    });

    const connect = async (member: Member) => {
      const client = new Client({ name: 'jarvis-e2e', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers: member.headers } }));
      clients.push(client);
      return client;
    };
    const call = async (client: Client, name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
    const passagesOf = (result: CallToolResult) => {
      assert.ok(!result.isError, textOf(result));
      return (result.structuredContent as { passages: Passage[] }).passages;
    };

    test("tools/list has the fixed tools and the tenant's published workflows, with their input schema", async () => {
      const { tools } = await (await connect(owner)).listTools();
      const names = tools.map((tool) => tool.name).sort();
      assert.deepEqual(names, ['ask', 'get_run', 'search_knowledge', 'workflow_brief']);
      const brief = tools.find((tool) => tool.name === 'workflow_brief')!;
      assert.deepEqual(brief.inputSchema.required, ['topic']);
      assert.match(brief.description ?? '', /Brief: Notes a topic down/);
      const search = tools.find((tool) => tool.name === 'search_knowledge')!;
      assert.deepEqual(search.inputSchema.required, ['query']);
      assert.deepEqual((search.inputSchema.properties as Record<string, { maximum?: number }>).topK!.maximum, 50);
    });

    test("search_knowledge finds the caller's own passage", async () => {
      const passages = passagesOf(await call(await connect(owner), 'search_knowledge', { query: 'nightly hotel limit', topK: 3 }));
      const [best] = passages;
      assert.ok(best, 'a passage');
      assert.match(best.text, /180 euros/);
      assert.equal(best.document.title, 'Travel policy');
      assert.equal(best.knowledgeBase.id, handbook);
      const scoped = passagesOf(await call(await connect(owner), 'search_knowledge', { query: 'nightly hotel limit', knowledgeBaseIds: [handbook] }));
      assert.ok(scoped.length > 0 && scoped.every((passage) => passage.knowledgeBase.id === handbook));
    });

    test("another tenant lists none of the first's workflows and finds none of its passages, only its own", async () => {
      const client = await connect(neighbour);
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((tool) => tool.name).sort(), ['ask', 'get_run', 'search_knowledge']);
      const passages = passagesOf(await call(client, 'search_knowledge', { query: 'nightly hotel limit' }));
      assert.ok(passages.every((passage) => passage.knowledgeBase.id === recipes && !/180 euros/.test(passage.text)), JSON.stringify(passages));
      // Named outright, the first tenant's knowledge base is refused as one that does not exist is.
      const named = await call(client, 'search_knowledge', { query: 'nightly hotel limit', knowledgeBaseIds: [handbook] });
      assert.equal(named.isError, true);
      assert.equal(textOf(named), `BAD_USER_INPUT: no knowledge base ${handbook}`);
      const own = passagesOf(await call(client, 'search_knowledge', { query: 'simmer the soup' }));
      assert.equal(own[0]?.knowledgeBase.id, recipes);
      const foreign = await call(client, 'workflow_brief', { topic: 'theirs' });
      assert.equal(foreign.isError, true);
      assert.match(textOf(foreign), /^NOT_FOUND: /);
    });

    test('a workflow tool starts a run that get_run follows to DONE', async () => {
      const client = await connect(owner);
      const started = await call(client, 'workflow_brief', { topic: 'tides' });
      assert.ok(!started.isError, textOf(started));
      const { runId, status, workflow } = started.structuredContent as { runId: string; status: string; workflow: string };
      assert.equal(workflow, 'brief');
      assert.ok(['RUNNING', 'DONE'].includes(status), status);
      assert.match(textOf(started), /get_run/);
      const done = await waitFor(
        async () => (await call(client, 'get_run', { runId })).structuredContent as { id: string; status: string; output: unknown },
        `run ${runId} to end`,
        { until: (run) => ['DONE', 'ERROR', 'CANCELLED'].includes(run?.status), timeoutMs: 30_000, intervalMs: 100 },
      );
      assert.equal(done.id, runId);
      assert.equal(done.status, 'DONE');
      assert.deepEqual(done.output, { topic: 'tides', noted: true });
      const theirs = await call(await connect(neighbour), 'get_run', { runId });
      assert.equal(theirs.isError, true);
      assert.match(textOf(theirs), /^NOT_FOUND: /);
    });

    test("input the workflow's schema refuses, or the tool's, is BAD_USER_INPUT", async () => {
      const client = await connect(owner);
      const missing = await call(client, 'workflow_brief', {});
      assert.equal(missing.isError, true);
      assert.match(textOf(missing), /^BAD_USER_INPUT: /);
      assert.match(textOf(missing), /topic/);
      const tooMany = await call(client, 'search_knowledge', { query: 'hotels', topK: 51 });
      assert.equal(tooMany.isError, true);
      assert.match(textOf(tooMany), /^BAD_USER_INPUT: topK: /);
    });

    test('a viewer lists the workflow but may not run it', async () => {
      const client = await connect(viewer);
      assert.ok((await client.listTools()).tools.some((tool) => tool.name === 'workflow_brief'));
      const refused = await call(client, 'workflow_brief', { topic: 'tides' });
      assert.equal(refused.isError, true);
      assert.match(textOf(refused), /^(FORBIDDEN|UNAUTHORIZED_FIELD_OR_TYPE): /);
      assert.equal(passagesOf(await call(client, 'search_knowledge', { query: 'nightly hotel limit' }))[0]?.knowledgeBase.id, handbook);
    });

    test("an API key is a caller too: its service account's tools", async () => {
      const key = await serviceKey(stack, owner, { roles: ['viewer'] });
      const client = await connect({ ...owner, headers: key.headers });
      assert.ok((await client.listTools()).tools.some((tool) => tool.name === 'workflow_brief'));
      const refused = await call(client, 'workflow_brief', { topic: 'tides' });
      assert.match(textOf(refused), /^(FORBIDDEN|UNAUTHORIZED_FIELD_OR_TYPE): /);
    });

    test('ask waits for the answer and returns it with its citations', async () => {
      const result = await call(await connect(owner), 'ask', { question: 'What is the nightly hotel limit?', knowledgeBaseIds: [handbook] });
      assert.ok(!result.isError, textOf(result));
      const { answer, citations } = result.structuredContent as { answer: string; citations: { n: number; text: string; knowledgeBase: { id: string } }[] };
      assert.match(answer, /180 euros/);
      assert.ok(citations.length > 0);
      assert.equal(citations[0]!.knowledgeBase.id, handbook);
    });

    test('without valid credentials: HTTP 401 with a Bearer challenge and a JSON-RPC error; GET and DELETE: 405', async () => {
      const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e', version: '1' } } };
      const post = (headers: Record<string, string>) =>
        fetch(mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: JSON.stringify(initialize) });
      const anonymous = await post({});
      assert.equal(anonymous.status, 401);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer\b/);
      const body = (await anonymous.json()) as { jsonrpc: string; error: { code: number; message: string } };
      assert.equal(body.jsonrpc, '2.0');
      assert.match(body.error.message, /^UNAUTHENTICATED/);
      const forged = await post({ authorization: 'Bearer not.a.token' });
      assert.equal(forged.status, 401);
      assert.match(forged.headers.get('www-authenticate') ?? '', /invalid_token/);
      await assert.rejects(connect({ ...owner, headers: {} }));
      for (const method of ['GET', 'DELETE']) {
        const response = await fetch(mcpUrl, { method, headers: { ...owner.headers, accept: 'text/event-stream' } });
        assert.equal(response.status, 405, method);
        assert.equal(response.headers.get('allow'), 'POST');
      }
      const notJson = await fetch(mcpUrl, { method: 'POST', headers: { ...owner.headers, 'content-type': 'text/plain', accept: 'application/json, text/event-stream' }, body: 'hello' });
      assert.equal(notJson.status, 415);
    });

    test("past its plan's rate a tool call is refused as GraphQL refuses it: RATE_LIMITED with retryAfter", async () => {
      const free = await signUp(stack, 'mcp-free', { plan: 'FREE', pastGateway: true });
      const key = await serviceKey(stack, free, { roles: ['viewer'] });
      const client = await connect({ ...free, headers: key.headers });
      const results = await Promise.all(Array.from({ length: 3 * PLAN_QUOTAS.FREE.apiKeyBurst }, () => call(client, 'get_run', { runId: randomUUID() })));
      const texts = results.map(textOf);
      assert.ok(texts.every((text) => /^(NOT_FOUND|RATE_LIMITED): /.test(text)), texts.join('\n'));
      const limited = texts.filter((text) => text.startsWith('RATE_LIMITED'));
      assert.ok(limited.length >= PLAN_QUOTAS.FREE.apiKeyBurst / 2, `${limited.length} refused`);
      for (const text of limited) assert.match(text, /\(retryAfter: \d+ s\)$/);
    });

    test('a tool call is one GraphQL operation: each gateway policy applies to it once', async () => {
      const client = await connect(owner);
      const steps = async () => {
        const text = await (await fetch(new URL('/metrics', stack.gatewayUrl))).text();
        const values = new Map<string, number>();
        for (const [, labels, value] of text.matchAll(/^jarvis_gateway_policy_steps_total\{(.*)\} (\d+)$/gm)) {
          const label = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(labels!)![1];
          values.set(`${label('policy')}/${label('stage')}/${label('outcome')}`, Number(value));
        }
        const searches = /^jarvis_graphql_requests_total\{(?=[^}]*operation="McpSearchKnowledge")(?=[^}]*outcome="success")[^}]*\} (\d+)$/m.exec(text)?.[1];
        values.set('McpSearchKnowledge requests', Number(searches ?? 0));
        return values;
      };
      const before = await steps();
      passagesOf(await call(client, 'search_knowledge', { query: 'travel desk' }));
      const grown: Record<string, number> = {};
      for (const [key, value] of await steps()) if (value > (before.get(key) ?? 0)) grown[key] = value - (before.get(key) ?? 0);
      assert.deepEqual(grown, {
        'McpSearchKnowledge requests': 1,
        'persisted documents/document/resolved': 1,
        'plan rate/admit/admitted': 1,
        'request metering/admit/admitted': 1,
        'authorization/operation/unchanged': 1,
        'field rate limits/operation/unchanged': 1,
      });
    });
  });
}
