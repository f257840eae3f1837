import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { freePort } from '@jarvis/platform/testing';
import type { ScoredId } from '../src/retrieval/ranking.ts';
import { HttpReranker, RerankError, type HttpRerankerOptions, type RerankApi } from '../src/retrieval/rerank-http.ts';
import { LocalReranker, type RerankPassage } from '../src/retrieval/rerank.ts';

const ids = (hits: ScoredId[]) => hits.map((hit) => hit.id);

interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

type Answer = (request: RecordedRequest, response: ServerResponse) => void;

interface FakeService {
  url: string;
  requests: RecordedRequest[];
}

/** A local HTTP server that records each request and answers it with `answer`. */
async function startService(answer: Answer): Promise<FakeService> {
  const service: FakeService = { url: '', requests: [] };
  const server = createServer(async (request, response) => {
    let raw = '';
    for await (const chunk of request) raw += chunk;
    const recorded = { method: request.method!, path: request.url!, headers: request.headers, body: JSON.parse(raw || '{}') };
    service.requests.push(recorded);
    answer(recorded, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  service.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return service;
}


function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** A stand-in cross-encoder: the number of query words in the passage. */
function relevance(query: string, passage: string): number {
  const words = new Set(passage.toLowerCase().split(/\W+/));
  return query.toLowerCase().split(/\W+/).filter((word) => words.has(word)).length;
}

function rankedIndexes(query: string, documents: string[]): { index: number; score: number }[] {
  return documents.map((document, index) => ({ index, score: relevance(query, document) })).sort((a, b) => b.score - a.score);
}

/** Each API's path and response, as the real services answer. */
const SERVICES: Record<RerankApi, { path: string; answer: Answer }> = {
  tei: {
    path: '/rerank',
    answer: ({ body }, response) => sendJson(response, 200, rankedIndexes(body.query as string, body.texts as string[])),
  },
  jina: {
    path: '/v1/rerank',
    answer: ({ body }, response) => {
      const results = rankedIndexes(body.query as string, body.documents as string[])
        .slice(0, body.top_n as number)
        .map(({ index, score }) => ({ index, relevance_score: score }));
      sendJson(response, 200, { model: body.model, usage: { total_tokens: 10 }, results });
    },
  },
  cohere: {
    path: '/v2/rerank',
    answer: ({ body }, response) => {
      const results = rankedIndexes(body.query as string, body.documents as string[])
        .slice(0, body.top_n as number)
        .map(({ index, score }) => ({ index, relevance_score: score }));
      sendJson(response, 200, { id: 'r-1', results, meta: { billed_units: { search_units: 1 } } });
    },
  },
};

const QUERY = 'aspirin colorectal cancer';
const PASSAGES: RerankPassage[] = [
  { id: 'statins', text: 'Statins and heart disease' },
  { id: 'screening', text: 'Colorectal cancer screening' },
  { id: 'aspirin', text: 'Aspirin lowers colorectal cancer risk' },
  { id: 'dosing', text: 'Aspirin dosing' },
];

const EXPECTED_BODIES: Record<RerankApi, Record<string, unknown>> = {
  tei: { query: QUERY, texts: PASSAGES.map((passage) => passage.text), raw_scores: false, truncate: true },
  jina: { model: 'jina-reranker-v2', query: QUERY, documents: PASSAGES.map((passage) => passage.text), top_n: 2, return_documents: false },
  cohere: { model: 'jina-reranker-v2', query: QUERY, documents: PASSAGES.map((passage) => passage.text), top_n: 2 },
};

async function rerankerFor(api: RerankApi, answer: Answer = SERVICES[api].answer, options: Partial<HttpRerankerOptions> = {}) {
  const service = await startService(answer);
  const reranker = new HttpReranker({ api, url: service.url, model: 'jina-reranker-v2', apiKey: 'rk-secret', ...options });
  return { service, reranker };
}

async function failure(promise: Promise<unknown>): Promise<RerankError> {
  const error = await promise.then(() => assert.fail('expected the rerank to fail'), (caught: unknown) => caught);
  assert.ok(error instanceof RerankError, `expected a RerankError, got ${String(error)}`);
  return error;
}

describe('HTTP reranker', () => {
  for (const api of ['tei', 'jina', 'cohere'] as const) {
    test(`${api}: sends the API's request and maps the top ${2} indexes back to ids, best first`, async () => {
      const { service, reranker } = await rerankerFor(api);
      const hits = await reranker.rerank(QUERY, PASSAGES, 2);

      assert.deepEqual(hits, [{ id: 'aspirin', score: 3 }, { id: 'screening', score: 2 }]);
      const [request] = service.requests as [RecordedRequest];
      assert.equal(service.requests.length, 1);
      assert.equal(request.method, 'POST');
      assert.equal(request.path, SERVICES[api].path);
      assert.equal(request.headers.authorization, 'Bearer rk-secret');
      assert.equal(request.headers['content-type'], 'application/json');
      assert.deepEqual(request.body, EXPECTED_BODIES[api]);
    });
  }

  test('the id names the API and model, or the TEI server when no model is named', async () => {
    const { reranker } = await rerankerFor('cohere', SERVICES.cohere.answer, { model: 'rerank-v3.5' });
    assert.equal(reranker.id, 'cohere:rerank-v3.5');
    const tei = new HttpReranker({ api: 'tei', url: 'http://127.0.0.1:8080/' });
    assert.equal(tei.id, 'tei:127.0.0.1:8080');
  });

  test('jina and cohere need a model; an unknown api or a relative url is refused', () => {
    assert.throws(() => new HttpReranker({ api: 'cohere', url: 'http://127.0.0.1:1' }), /the cohere rerank api needs a model/);
    assert.throws(() => new HttpReranker({ api: 'other' as RerankApi, url: 'http://127.0.0.1:1' }), /unknown rerank api "other"/);
    assert.throws(() => new HttpReranker({ api: 'tei', url: '/rerank' }), /absolute URL/);
  });

  test('a url with a path prefix keeps it; no key, no Authorization header', async () => {
    const service = await startService(SERVICES.tei.answer);
    const reranker = new HttpReranker({ api: 'tei', url: `${service.url}/models/reranker/` });
    await reranker.rerank(QUERY, PASSAGES, 1);
    assert.equal(service.requests[0]!.path, '/models/reranker/rerank');
    assert.equal(service.requests[0]!.headers.authorization, undefined);
  });

  test('asking for more than there are returns them all; no passages, no request', async () => {
    const { service, reranker } = await rerankerFor('jina');
    assert.equal((await reranker.rerank(QUERY, PASSAGES, 10)).length, PASSAGES.length);
    assert.equal(service.requests[0]!.body.top_n, PASSAGES.length);
    assert.deepEqual(await reranker.rerank(QUERY, [], 5), []);
    assert.equal(service.requests.length, 1);
  });

  test('long passages are cut at a word boundary; a title the text lacks is sent before it', async () => {
    const { service, reranker } = await rerankerFor('tei', SERVICES.tei.answer, { maxPassageChars: 20 });
    await reranker.rerank(QUERY, [
      { id: 'long', text: 'aspirin colorectal cancer prevention trial' },
      { id: 'titled', title: 'Aspirin', text: 'in cancer' },
      { id: 'title-in-text', title: 'Aspirin', text: 'Aspirin in cancer' },
    ], 3);
    assert.deepEqual(service.requests[0]!.body.texts, ['aspirin colorectal', 'Aspirin\nin cancer', 'Aspirin in cancer']);
  });

  test('an error status fails with HTTP_STATUS, the status and the body, and not the key', async () => {
    const { service, reranker } = await rerankerFor('cohere', (_request, response) =>
      sendJson(response, 401, { message: 'invalid api token rk-secret' }),
    );
    const error = await failure(reranker.rerank(QUERY, PASSAGES, 2));
    assert.equal(error.code, 'HTTP_STATUS');
    assert.equal(error.status, 401);
    assert.equal(error.message, `rerank request to ${service.url}/v2/rerank (cohere) failed: HTTP 401: {"message":"invalid api token [redacted]"}`);
  });

  test('a 500 is not retried', async () => {
    const { service, reranker } = await rerankerFor('tei', (_request, response) => sendJson(response, 500, { error: 'overloaded' }));
    assert.equal((await failure(reranker.rerank(QUERY, PASSAGES, 2))).code, 'HTTP_STATUS');
    assert.equal(service.requests.length, 1);
  });

  test('a service that does not answer in time fails with TIMEOUT', async () => {
    const { service, reranker } = await rerankerFor('jina', () => {}, { timeoutMs: 100 });
    const started = performance.now();
    const error = await failure(reranker.rerank(QUERY, PASSAGES, 2));
    assert.equal(error.code, 'TIMEOUT');
    assert.equal(error.message, `rerank request to ${service.url}/v1/rerank (jina) failed: timed out after 100 ms`);
    assert.ok(performance.now() - started < 2_000);
  });

  test('an unreachable service fails with UNREACHABLE', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const error = await failure(new HttpReranker({ api: 'tei', url }).rerank(QUERY, PASSAGES, 2));
    assert.equal(error.code, 'UNREACHABLE');
    assert.equal(error.message, `rerank request to ${url}/rerank (tei) failed: connection failed: ECONNREFUSED`);
  });

  test('indexes out of range or repeated, missing scores, other shapes and non-JSON fail with BAD_RESPONSE', async () => {
    const answers: [Record<string, unknown> | string, RegExp][] = [
      [{ results: [{ index: 4, relevance_score: 1 }] }, /passage index 4 is out of range or repeated/],
      [{ results: [{ index: 1, relevance_score: 1 }, { index: 1, relevance_score: 0.5 }] }, /passage index 1 is out of range or repeated/],
      [{ results: [{ index: 0 }] }, /no numeric score for passage index 0/],
      [{ data: [] }, /not the expected list of results/],
      ['<html>', /not JSON/],
    ];
    for (const [body, message] of answers) {
      const { reranker } = await rerankerFor('jina', (_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(typeof body === 'string' ? body : JSON.stringify(body));
      });
      const error = await failure(reranker.rerank(QUERY, PASSAGES, 2));
      assert.equal(error.code, 'BAD_RESPONSE');
      assert.match(error.message, message);
    }
  });
});

describe('local reranker', () => {
  const reranker = new LocalReranker();

  test('a passage covering the whole query overtakes one that repeats a single query term', async () => {
    const firstStage: RerankPassage[] = [
      { id: 'repeats', text: 'Aspirin: aspirin dosing, aspirin absorption and aspirin metabolism.', score: 12 },
      { id: 'covers', text: 'Daily aspirin lowers the risk of colorectal cancer in adults.', score: 10 },
      { id: 'screening', text: 'Colorectal cancer screening.', score: 6 },
      { id: 'factors', text: 'Cancer risk factors.', score: 5 },
      { id: 'unrelated', text: 'Statins and heart disease.', score: 1 },
    ];
    const hits = await reranker.rerank('Aspirin lowers colorectal cancer risk', firstStage, 5);
    assert.deepEqual(ids(hits), ['covers', 'repeats', 'screening', 'factors', 'unrelated']);
    assert.ok(hits.every((hit, i) => i === 0 || hits[i - 1]!.score >= hit.score));
  });

  test('a query term few candidates share weighs more than one they all share', async () => {
    const hits = await reranker.rerank('cancer risk in smokers', [
      { id: 'common-only', text: 'cancer cancer risk in adults', score: 2 },
      { id: 'rare-term', text: 'cancer in smokers', score: 1.8 },
      { id: 'other', text: 'cancer in children', score: 1 },
      { id: 'another', text: 'cancer and risk in diet', score: 1 },
    ], 2);
    assert.deepEqual(ids(hits), ['rare-term', 'common-only']);
  });

  test('a title matching the query lifts its passage over the same text under another title', async () => {
    const text = 'Aspirin, colorectal cancer and other outcomes in a cohort of adults.';
    const hits = await reranker.rerank('aspirin and colorectal cancer', [
      { id: 'other-title', title: 'Study design', text, score: 2 },
      { id: 'matching-title', title: 'Aspirin and colorectal cancer', text, score: 1.8 },
      { id: 'none', text: 'Unrelated', score: 0 },
    ], 3);
    assert.deepEqual(ids(hits), ['matching-title', 'other-title', 'none']);
  });

  test('with nothing of the query in any passage, the first-stage order stands; topN cuts it', async () => {
    const hits = await reranker.rerank('zebrafish', [
      { id: 'b', text: 'alpha', score: 3 },
      { id: 'a', text: 'beta', score: 2 },
      { id: 'c', text: 'gamma', score: 1 },
    ], 2);
    assert.deepEqual(ids(hits), ['b', 'a']);
  });

  test('first-stage scores are required', async () => {
    await assert.rejects(reranker.rerank('aspirin', [{ id: 'a', text: 'aspirin' }], 1), /needs every passage's first-stage score/);
  });
});
