/**
 * Agents through the gateway: an agent run on the embedded default's local provider searches its knowledge base
 * with the deterministic tool-chooser and answers from the passage; against an OpenAI-compatible server, the
 * model's tool calls are carried out and their results handed back as `tool` messages, a tool the agent was not
 * given is never run (the model is told so, as data), and a workflow's HTTP call to a private or metadata
 * address is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { startFakeOpenAI, type FakeOpenAI } from '../subgraphs/chat/test/fake-openai.ts';
import { addDocument } from './isolation-tenants.ts';
import { as, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const REMOTE = 'remote-agentic';
// At the top level: it closes after the whole file.
const fake: FakeOpenAI = await startFakeOpenAI();

const RUN = `query($id: ID!) { run(id: $id) { status output error { code message path } steps { name kind status input output } promptTokens } }`;
type RunView = { status: string; output: { answer?: string; steps?: number } | null; error: { code: string; message: string; path: string } | null; steps: { name: string; kind: string; status: string; input: unknown; output: unknown }[]; promptTokens: number };

for (const variant of databaseVariants()) {
  describe(`agents and their tools, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let knowledgeBaseId: string;

    before(async () => {
      stack = await startTestStack(variant, {
        AUTH_DEV_LOGIN: 'true',
        OPENAI_BASE_URL: fake.baseURL,
        OPENAI_API_KEY: 'test-key',
        CHAT_MODELS: JSON.stringify([
          { name: 'local-extractive', provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: 8192, quality: 1 },
          { name: REMOTE, provider: 'openai', model: REMOTE, costPer1kPromptTokens: 0.01, costPer1kCompletionTokens: 0.03, contextWindow: 8192, quality: 5 },
        ]),
      });
      owner = await signUp(stack, 'agents', { pastGateway: true });
      const { createKnowledgeBase } = await as<{ createKnowledgeBase: { id: string } }>(stack, owner, `mutation { createKnowledgeBase(input: { name: "Handbook" }) { id } }`);
      knowledgeBaseId = createKnowledgeBase.id;
      const documentId = await addDocument(stack, owner, knowledgeBaseId, 'Vault', '# Vault\n\nThe vault code is 4711. It changes every spring.\n');
      await waitFor(
        async () => (await as<{ document: { status: string } }>(stack, owner, `query($id: ID!) { document(id: $id) { status } }`, { id: documentId })).document.status,
        'the document READY',
        { until: (status) => status === 'READY', timeoutMs: 30_000, intervalMs: 50 },
      );
    });
    after(() => stack?.close());

    const agent = (name: string, model: string, extra = '') => `instructions: Answer from the handbook.\nmodel: ${model}\ntools:\n  knowledgeBases: [${knowledgeBaseId}]\n${extra}maxSteps: 6\ntokenBudget: 20000\n`;
    async function run(name: string, source: string, input: unknown): Promise<RunView> {
      const { createDefinition } = await as<{ createDefinition: { id: string } }>(stack, owner, `mutation($input: CreateDefinitionInput!) { createDefinition(input: $input) { id } }`, {
        input: { name, kind: source.startsWith('document:') ? 'WORKFLOW' : 'AGENT', source },
      });
      const { startRun } = await as<{ startRun: { id: string } }>(stack, owner, `mutation($input: StartRunInput!) { startRun(input: $input) { id } }`, {
        input: { definitionId: createDefinition.id, version: 1, input },
      });
      return (await waitFor(async () => (await as<{ run: RunView }>(stack, owner, RUN, { id: startRun.id })).run, `run of ${name} ended`, {
        until: (view) => ['DONE', 'ERROR', 'CANCELLED'].includes(view.status),
        timeoutMs: 30_000,
        intervalMs: 100,
      }))!;
    }

    test('on the local provider, the agent searches its knowledge base and answers from what it found', async () => {
      const done = await run('local-helper', agent('local-helper', 'local-extractive'), 'What is the vault code?');
      assert.equal(done.status, 'DONE', JSON.stringify(done.error));
      assert.deepEqual(done.steps.map((step) => step.kind), ['model', 'tool:search', 'model']);
      assert.match(done.output!.answer!, /4711/, 'the answer quotes the passage the search found');
    });

    test("the model's tool calls are carried out; a tool the agent was not given is refused to it as data, and nothing runs", async () => {
      fake.script(
        REMOTE,
        { kind: 'toolCalls', calls: [{ id: 'c1', name: 'search_knowledge', arguments: JSON.stringify({ query: 'vault code' }) }] },
        { kind: 'toolCalls', calls: [{ id: 'c2', name: 'http_0', arguments: JSON.stringify({ method: 'GET', url: 'http://169.254.169.254/latest/meta-data/' }) }] },
        { kind: 'answer', tokens: ['The ', 'code ', 'is ', '4711.'] },
      );
      const before = fake.requestsFor(REMOTE).length;
      const done = await run('remote-helper', agent('remote-helper', REMOTE), 'What is the vault code?');
      assert.equal(done.status, 'DONE', JSON.stringify(done.error));
      assert.equal(done.output!.answer, 'The code is 4711.');
      const requests = fake.requestsFor(REMOTE).slice(before);
      assert.equal(requests.length, 3);
      assert.deepEqual(requests[0]!.body.tools!.map((tool) => tool.function.name), ['search_knowledge'], 'only the tools it was given are offered');
      const second = requests[1]!.body.messages;
      const searched = second.find((message) => message.role === 'tool' && message.tool_call_id === 'c1')!;
      assert.match(searched.content!, /4711/, "the search's passages come back as a tool message");
      const third = requests[2]!.body.messages;
      const refused = third.find((message) => message.role === 'tool' && message.tool_call_id === 'c2')!;
      assert.match(refused.content!, /no tool named http_0/);
      assert.deepEqual(requests[2]!.body.tools!.map((tool) => tool.function.name), ['search_knowledge'], 'a tool result changed nothing of its tools');
    });

    test("a workflow's HTTP call to a loopback, private or metadata address, or a name resolving to one, ends the run OUTBOUND_REFUSED", async () => {
      for (const [i, endpoint] of ['https://127.0.0.1/x', 'https://10.1.2.3/x', 'https://169.254.169.254/latest/meta-data/', 'https://localhost/x'].entries()) {
        const done = await run(
          `fetcher-${i}`,
          `document: { dsl: '1.0.0', namespace: e2e, name: fetcher-${i}, version: '1.0.0' }\ndo:\n  - fetch:\n      call: http\n      with:\n        method: get\n        endpoint: ${endpoint}\n`,
          {},
        );
        assert.equal(done.status, 'ERROR', endpoint);
        assert.equal(done.error!.code, 'OUTBOUND_REFUSED', `${endpoint}: ${done.error!.message}`);
        assert.equal(done.error!.path, '/do/0/fetch');
      }
    });
  });
}
