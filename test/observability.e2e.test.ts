/**
 * Tracing and metrics through the whole stack: one request traced from the gateway into a subgraph and its
 * database (an in-memory span exporter in place of OTLP), an ingestion job continuing the trace of the request
 * that queued it, log lines naming their span, and every service's `/metrics` after real traffic.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { PLAN_QUOTAS } from '@jarvis/platform/contracts';
import { createLogger } from '@jarvis/platform/logger';
import { SpanKind, startTelemetry, traced, type Telemetry } from '@jarvis/platform/telemetry';
import { databaseVariants, InMemorySpanExporter, SimpleSpanProcessor, waitFor, type ReadableSpan } from '@jarvis/platform/testing';
import { as, respond, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const exporter = new InMemorySpanExporter();
// Before any service starts, as scripts/serve.ts does.
const telemetry: Telemetry = startTelemetry({ serviceName: 'jarvis-test', spanProcessors: [new SimpleSpanProcessor(exporter)] });
after(() => telemetry.shutdown());

const pglite = databaseVariants().find((variant) => variant.name === 'pglite')!;

const HANDBOOK = '# Expenses\n\nReceipts are kept for ten years. Taxis are refunded after ten at night.';

describe('tracing and metrics through the stack', () => {
  let stack: TestStack;
  let owner: Member;
  let knowledgeBaseId: string;
  const clients: Client[] = [];

  before(async () => {
    stack = await startTestStack(pglite, { AUTH_DEV_LOGIN: 'true' });
    owner = await signUp(stack, 'observed', { name: 'Observed Ltd' });
    knowledgeBaseId = (
      await as<{ createKnowledgeBase: { id: string } }>(stack, owner, `mutation { createKnowledgeBase(input: { name: "Handbooks", memberAccess: READ }) { id } }`)
    ).createKnowledgeBase.id;
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    await stack?.close();
  });

  const spans = () => exporter.getFinishedSpans();
  const parentId = (span: ReadableSpan) => span.parentSpanContext?.spanId;
  const idOf = (span: ReadableSpan) => span.spanContext().spanId;
  const traceOf = (span: ReadableSpan) => span.spanContext().traceId;
  /** The span and its ancestors, nearest first. */
  function lineage(span: ReadableSpan, all: ReadableSpan[]): ReadableSpan[] {
    const byId = new Map(all.map((s) => [idOf(s), s]));
    const chain = [span];
    for (let parent = byId.get(parentId(span) ?? ''); parent; parent = byId.get(parentId(parent) ?? '')) chain.push(parent);
    return chain;
  }
  const describeSpans = (all: ReadableSpan[]) => all.map((s) => `${s.name}[${idOf(s).slice(0, 4)}←${parentId(s)?.slice(0, 4) ?? 'root'}]`).join(', ');

  test('one traced request shows gateway → subgraph → database spans in one trace', async () => {
    exporter.reset();
    await as(stack, owner, `query HandbookNames { tenant { name knowledgeBases { name } } }`);
    const all = await waitFor(spans, 'the request span and a knowledge database span', {
      until: (finished) => finished.some((s) => s.name === 'graphql HandbookNames' && s.kind === SpanKind.SERVER && s.attributes['jarvis.outcome'] === 'success'),
    });
    const root = all.find((s) => s.name === 'graphql HandbookNames' && parentId(s) === undefined)!;
    assert.ok(root, `a root span for the operation at the gateway: ${describeSpans(all)}`);
    const trace = all.filter((s) => traceOf(s) === traceOf(root));

    const knowledgeFetch = trace.find((s) => s.name === 'gateway.fetch' && s.attributes.service === 'knowledge');
    assert.ok(knowledgeFetch, `@apollo/gateway's fetch to knowledge is in the trace: ${describeSpans(trace)}`);
    const knowledgeServer = trace.find((s) => s.kind === SpanKind.SERVER && parentId(s) === idOf(knowledgeFetch));
    assert.ok(knowledgeServer, `the knowledge subgraph's request span is the fetch's child (traceparent): ${describeSpans(trace)}`);
    const query = trace.find((s) => s.name.startsWith('db ') && lineage(s, trace).includes(knowledgeServer));
    assert.ok(query, `a database span under the subgraph's request: ${describeSpans(trace)}`);
    assert.equal(query.attributes['db.system.name'], 'postgresql');
    assert.match(String(query.attributes['db.query.text']), /knowledge_bases/);
    assert.ok(lineage(query, trace).includes(root), 'database span → subgraph → fetch → gateway operation, one chain');
    assert.ok(trace.some((s) => s.name === 'gateway.fetch' && s.attributes.service === 'tenancy'), 'the tenancy fetch in the same trace');
  });

  test('an ingestion job continues the trace of the request that queued it, through the outbox and the bus', async () => {
    exporter.reset();
    await as(stack, owner, `mutation AddExpenses($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
      input: { knowledgeBaseId, title: 'Expenses', content: HANDBOOK, mediaType: 'text/markdown' },
    });
    const all = await waitFor(spans, 'the ingestion job to be processed', { until: (finished) => finished.some((s) => s.name === 'process knowledge.document.queued'), timeoutMs: 30_000 });
    const root = all.find((s) => s.name === 'graphql AddExpenses' && parentId(s) === undefined)!;
    const job = all.find((s) => s.name === 'process knowledge.document.queued')!;
    assert.equal(job.kind, SpanKind.CONSUMER);
    assert.equal(traceOf(job), traceOf(root), `the job is in the request's trace: ${describeSpans(all)}`);
    const publish = lineage(job, all)[1];
    assert.equal(publish?.name, 'publish knowledge.document.queued', 'the delivery is the child of its publish');
    assert.ok(all.some((s) => s.name.startsWith('db ') && lineage(s, all).includes(job)), 'the job writes through database spans of its own');
  });

  test('a workflow run is a span in the trace of the request that started it, each step a span under it', async () => {
    const source = `document: { dsl: '1.0.0', namespace: traced, name: traced-run, version: '1.0.0' }\ndo:\n  - ask:\n      call: jarvis.model\n      with: { prompt: Hello }\n`;
    const { createDefinition } = await as<{ createDefinition: { id: string } }>(stack, owner, `mutation($input: CreateDefinitionInput!) { createDefinition(input: $input) { id } }`, {
      input: { name: 'traced-run', kind: 'WORKFLOW', source },
    });
    exporter.reset();
    await as(stack, owner, `mutation StartTraced($id: ID!) { startRun(input: { definitionId: $id, version: 1 }) { id } }`, { id: createDefinition.id });
    const all = await waitFor(spans, 'the run span to end', { until: (finished) => finished.some((s) => s.name === 'agents.run'), timeoutMs: 30_000 });
    const root = all.find((s) => s.name === 'graphql StartTraced' && parentId(s) === undefined)!;
    const run = all.find((s) => s.name === 'agents.run')!;
    assert.equal(traceOf(run), traceOf(root), `the run is in the trace of startRun: ${describeSpans(all)}`);
    assert.ok(lineage(run, all).includes(root), 'run → … → the gateway operation');
    const step = all.find((s) => s.name === 'agents.step call:jarvis.model');
    assert.ok(step && lineage(step, all).includes(run), `the model call's step is under the run: ${describeSpans(all)}`);
  });

  test('log lines written in a span carry its trace and span ids', async () => {
    const lines: string[] = [];
    const log = createLogger('observed', 'info', new Writable({ write: (chunk, _encoding, done) => void (lines.push(String(chunk)), done()) }));
    const ids = await traced('logging', {}, async (span) => {
      log.info('inside');
      return span!.spanContext();
    });
    log.info('outside');
    const [inside, outside] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(inside!.trace_id, ids.traceId);
    assert.equal(inside!.span_id, ids.spanId);
    assert.equal(outside!.trace_id, undefined);
  });

  test('every service exposes its metrics at /metrics, with the families filled in by traffic', async () => {
    const { addDocument } = await as<{ addDocument: { id: string } }>(stack, owner, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
      input: { knowledgeBaseId, title: 'Receipts', content: HANDBOOK, mediaType: 'text/markdown' },
    });
    await waitFor(
      async () => (await as<{ document: { status: string } }>(stack, owner, `query($id: ID!) { document(id: $id) { status } }`, { id: addDocument.id })).document.status,
      'the handbook to be READY',
      { until: (status) => status === 'READY', timeoutMs: 30_000 },
    );
    // Errors, and refusals of each kind.
    const invalid = await respond(stack, owner, `mutation Invalid { deleteDocument(id: "00000000-0000-4000-8000-000000000000") }`);
    const invalidCode = String(invalid.errors?.[0]?.extensions?.code);
    assert.equal(invalidCode, 'NOT_FOUND', JSON.stringify(invalid));
    const free = await signUp(stack, 'free-rate', { plan: 'FREE' });
    // Bursts until one is refused: on a loaded machine the sustained rate may refill a single burst as it goes.
    const burst = () => Array.from({ length: PLAN_QUOTAS.FREE.burst }, () => fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...free.headers }, body: '{"query":"{ tenant { slug } }"}' }));
    await waitFor(async () => (await Promise.all(burst())).some((response) => response.status === 429), 'the FREE plan to refuse a request', { timeoutMs: 30_000 });
    await as(stack, owner, `mutation { setQuota(input: { storageBytes: 10 }) { limits { storageBytes } } }`);
    await waitFor(
      async () => (await respond(stack, owner, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, { input: { knowledgeBaseId, title: `Big ${Date.now()}`, content: HANDBOOK.repeat(3) } })).errors?.[0]?.extensions?.code,
      'the storage quota to apply',
      { until: (code) => code === 'QUOTA_EXCEEDED', timeoutMs: 10_000, intervalMs: 50 },
    );
    // Two answers to one question (the second from the cache), one of them followed over the gateway's WebSocket.
    const first = await askAndFollow('How long are receipts kept?');
    const second = await askAndFollow('How long are receipts kept?');
    assert.deepEqual([first.at(-1), second.at(-1)], ['DONE', 'DONE']);

    await as(stack, owner, `query Definitions { tenant { definitions { name } } }`);

    const gateway = await scrape(stack.gatewayUrl);
    assert.ok(sample(gateway, 'jarvis_graphql_requests_total', { service: 'gateway', operation: 'HandbookNames', outcome: 'success' }) >= 1);
    assert.ok(sample(gateway, 'jarvis_graphql_request_duration_seconds_count', { operation: 'HandbookNames', outcome: 'success' }) >= 1);
    assert.ok(sample(gateway, 'jarvis_graphql_requests_total', { outcome: 'rejected' }) >= 1, 'refused requests count as rejected');
    assert.ok(sample(gateway, 'jarvis_graphql_errors_total', { code: invalidCode }) >= 1);
    assert.ok(sample(gateway, 'jarvis_graphql_requests_total', { operation: 'Invalid', outcome: 'error' }) >= 1);
    assert.ok(sample(gateway, 'jarvis_limit_rejections_total', { limit: 'plan_rate', code: 'RATE_LIMITED' }) >= 1);
    assert.ok(sample(gateway, 'jarvis_limit_rejections_total', { code: 'QUOTA_EXCEEDED' }) >= 1);
    for (const subgraph of ['tenancy', 'knowledge', 'chat', 'usage', 'agents']) {
      assert.ok(sample(gateway, 'jarvis_gateway_subgraph_fetch_duration_seconds_count', { subgraph, outcome: 'success' }) >= 1, `fetches to ${subgraph}`);
    }
    assert.ok(has(gateway, 'jarvis_gateway_active_subscriptions') && has(gateway, 'jarvis_gateway_websocket_connections'));
    assert.ok(has(gateway, 'process_cpu_seconds_total') && has(gateway, 'nodejs_eventloop_lag_p99_seconds'), 'Node default metrics');

    const subgraphs = Object.fromEntries(await Promise.all(Object.entries(stack.subgraphUrls).map(async ([name, url]) => [name, await scrape(url)] as const)));
    for (const [name, text] of Object.entries(subgraphs)) {
      assert.ok(sample(text, 'jarvis_graphql_requests_total', { service: name, outcome: 'success' }) >= 1, `${name} counts its requests`);
    }
    const knowledge = subgraphs.knowledge!;
    assert.ok(sample(knowledge, 'jarvis_ingestion_jobs_total', { outcome: 'ready' }) >= 1);
    assert.ok(has(knowledge, 'jarvis_ingestion_queue_depth', { status: 'PENDING' }) && has(knowledge, 'jarvis_ingestion_queue_depth', { status: 'PROCESSING' }));
    assert.ok(sample(knowledge, 'jarvis_limit_rejections_total', { limit: 'quota', code: 'QUOTA_EXCEEDED' }) >= 1);
    assert.ok(sample(knowledge, 'jarvis_graphql_errors_total', { code: 'QUOTA_EXCEEDED' }) >= 1);
    const chat = subgraphs.chat!;
    assert.ok(sample(chat, 'jarvis_model_tokens_total', { model: 'local-extractive', kind: 'prompt' }) > 0);
    assert.ok(sample(chat, 'jarvis_model_tokens_total', { model: 'local-extractive', kind: 'completion' }) > 0);
    assert.ok(sample(chat, 'jarvis_model_time_to_first_token_seconds_count', { model: 'local-extractive' }) >= 1);
    assert.ok(sample(chat, 'jarvis_inference_cache_lookups_total', { result: 'miss' }) >= 1);
    assert.ok(sample(chat, 'jarvis_inference_cache_lookups_total', { result: 'hit', kind: 'EXACT' }) >= 1);
  });

  test('the gateway counts WebSocket connections and subscriptions while they are open', async () => {
    const client = connect();
    const events: unknown[] = [];
    const unsubscribe = client.subscribe(
      { query: `subscription($kb: ID!) { documentStatusChanged(knowledgeBaseId: $kb) { id status } }`, variables: { kb: knowledgeBaseId } },
      { next: (event) => void events.push(event), error: () => {}, complete: () => {} },
    );
    await waitFor(async () => sample(await scrape(stack.gatewayUrl), 'jarvis_gateway_active_subscriptions'), 'the subscription to be counted', { until: (n) => n >= 1 });
    assert.ok(sample(await scrape(stack.gatewayUrl), 'jarvis_gateway_websocket_connections') >= 1);
    unsubscribe();
    await waitFor(async () => sample(await scrape(stack.gatewayUrl), 'jarvis_gateway_active_subscriptions'), 'the subscription to be let go', { until: (n) => n === 0 });
    assert.equal(events.length, 0, 'no document changed meanwhile');
  });

  function connect(): Client {
    const client = createClient({ url: stack.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: owner.headers.authorization }, retryAttempts: 0 });
    clients.push(client);
    return client;
  }

  /** Asks, then reads the answer's event types over the gateway until DONE or ERROR. */
  async function askAndFollow(question: string): Promise<string[]> {
    const { ask } = await as<{ ask: { answer: { id: string } } }>(stack, owner, `mutation($input: AskInput!) { ask(input: $input) { answer { id } } }`, {
      input: { question, knowledgeBaseIds: [knowledgeBaseId] },
    });
    const types: string[] = [];
    for await (const result of connect().iterate<{ answerStream: { type: string } }>({
      query: `subscription($id: ID!) { answerStream(messageId: $id) { type } }`,
      variables: { id: ask.answer.id },
    })) {
      const type = result.data!.answerStream.type;
      types.push(type);
      if (type === 'DONE' || type === 'ERROR') break;
    }
    return types;
  }
});

async function scrape(graphqlUrl: string): Promise<string> {
  const response = await fetch(graphqlUrl.replace(/\/graphql$/, '/metrics'));
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  return response.text();
}

/** The samples of `name` whose labels include `labels`. */
function samples(text: string, name: string, labels: Record<string, string> = {}): number[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => Object.entries(labels).every(([label, value]) => line.includes(`${label}="${value}"`)))
    .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
}

const has = (text: string, name: string, labels: Record<string, string> = {}) => samples(text, name, labels).length > 0;
/** The sum of the matching samples. */
const sample = (text: string, name: string, labels: Record<string, string> = {}) => samples(text, name, labels).reduce((sum, value) => sum + value, 0);
