import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { freePort } from '@jarvis/platform/testing';
import { EmbeddingServiceError, openOpenAIEmbedder, type OpenAIEmbedderOptions } from '../src/retrieval/openai-embedder.ts';

interface EmbeddingsBody {
  model: string;
  input: string[];
  dimensions?: number;
  encoding_format?: 'float' | 'base64';
}

interface Failure {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

interface FakeBehaviour {
  nativeDimensions: number;
  /** Answer every request with float arrays whatever `encoding_format` asks, as some servers do. */
  floatsOnly?: boolean;
  /** Vectors one longer than asked for. */
  wrongLength?: boolean;
  /** Never answer. */
  silent?: boolean;
  /** Served one per request before any success. */
  failures?: Failure[];
}

interface FakeOpenAI {
  baseURL: string;
  requests: { headers: IncomingHttpHeaders; body: EmbeddingsBody }[];
  behaviour: FakeBehaviour;
}

/** Not unit length, and different for different texts, so normalisation and order are both visible. */
function rawVector(text: string, dimensions: number): number[] {
  return Array.from({ length: dimensions }, (_, i) => ([...text].reduce((sum, char) => sum + char.charCodeAt(0) * (i + 1), 0) % 17) - 8 || 1);
}

function unit(values: number[]): number[] {
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
}

function base64Floats(values: number[]): string {
  return Buffer.from(new Float32Array(values).buffer).toString('base64');
}

/** POST /v1/embeddings as OpenAI speaks it, answering in reverse order so that only `index` places a vector. */
async function startFakeOpenAI(behaviour: FakeBehaviour): Promise<FakeOpenAI> {
  const fake: FakeOpenAI = { baseURL: '', requests: [], behaviour };
  const server = createServer(async (request, response) => {
    let raw = '';
    for await (const chunk of request) raw += chunk;
    if (request.method !== 'POST' || request.url !== '/v1/embeddings') return sendJson(response, 404, { error: { message: 'not found' } });
    const body = JSON.parse(raw) as EmbeddingsBody;
    fake.requests.push({ headers: request.headers, body });
    if (fake.behaviour.silent) return;
    const failure = fake.behaviour.failures?.shift();
    if (failure) return sendJson(response, failure.status, { error: { message: failure.message, type: 'server_error' } }, failure.headers);
    sendJson(response, 200, embeddingsResponse(body, fake.behaviour));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return fake;
}

function embeddingsResponse(body: EmbeddingsBody, behaviour: FakeBehaviour) {
  const length = (body.dimensions ?? behaviour.nativeDimensions) + (behaviour.wrongLength ? 1 : 0);
  const asBase64 = body.encoding_format === 'base64' && !behaviour.floatsOnly;
  const data = body.input.map((text, index) => {
    const vector = rawVector(text, length);
    return { object: 'embedding', index, embedding: asBase64 ? base64Floats(vector) : vector };
  });
  return { object: 'list', data: data.reverse(), model: body.model, usage: { prompt_tokens: 1, total_tokens: 1 } };
}


function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

function options(fake: FakeOpenAI, overrides: Partial<OpenAIEmbedderOptions> = {}): OpenAIEmbedderOptions {
  return { baseURL: fake.baseURL, model: 'test-embed', apiKey: 'sk-test-secret', ...overrides };
}

function assertVector(actual: Float32Array, expected: number[]): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((value, i) => assert.ok(Math.abs(actual[i]! - value) < 1e-6, `component ${i}: expected ${value}, got ${actual[i]}`));
}

/** The SDK's retry-after-ms header keeps retries fast in tests; without it the SDK backs off 0.5 s, 1 s, 2 s… */
const RETRY_NOW = { 'retry-after-ms': '5' };

describe('OpenAI-compatible embedder', () => {
  test('batches requests, keeps input order though the server answers out of order, and normalises', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 6 });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 6, batchSize: 3, concurrency: 2 }));
    const texts = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta'];

    const vectors = await embedder.embed(texts);

    assert.deepEqual(fake.requests.map(({ body }) => body.input.length).sort(), [1, 3, 3]);
    assert.deepEqual(fake.requests.flatMap(({ body }) => body.input).sort(), [...texts].sort());
    texts.forEach((text, i) => assertVector(vectors[i]!, unit(rawVector(text, 6))));
  });

  test('sends the API key as a bearer token, the model, and base64 as the SDK asks by default', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 4 });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 4 }));
    await embedder.embed(['one']);

    const [{ headers, body }] = fake.requests as [FakeOpenAI['requests'][0]];
    assert.equal(headers.authorization, 'Bearer sk-test-secret');
    assert.equal(body.model, 'test-embed');
    assert.equal(body.encoding_format, 'base64');
  });

  test('without an API key no Authorization header is sent', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 4 });
    const embedder = await openOpenAIEmbedder(options(fake, { apiKey: undefined, dimensions: 4 }));
    await embedder.embed(['one']);
    assert.equal(fake.requests[0]!.headers.authorization, undefined);
  });

  test('configured dimensions are sent, name the embedder, and need no probe', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 8 });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 5 }));
    assert.equal(fake.requests.length, 0);
    assert.equal(embedder.id, 'openai:test-embed-5');
    assert.equal(embedder.dimensions, 5);

    const [vector] = await embedder.embed(['one']);
    assert.equal(fake.requests[0]!.body.dimensions, 5);
    assert.equal(vector!.length, 5);
  });

  test('unconfigured dimensions are learnt from one probe, and no dimensions parameter is sent', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 7 });
    const embedder = await openOpenAIEmbedder(options(fake));
    assert.equal(fake.requests.length, 1);
    assert.equal(embedder.dimensions, 7);
    assert.equal(embedder.id, 'openai:test-embed-7');

    await embedder.embed(['one', 'two']);
    assert.ok(fake.requests.every(({ body }) => !('dimensions' in body)));
  });

  test('float arrays are accepted from servers that ignore encoding_format', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 4, floatsOnly: true });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 4 }));
    const [vector] = await embedder.embed(['floats']);
    assertVector(vector!, unit(rawVector('floats', 4)));
  });

  test('blank texts get the zero vector and are not sent', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 4 });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 4 }));
    const vectors = await embedder.embed(['', 'word', '  ']);

    assert.deepEqual(fake.requests.map(({ body }) => body.input), [['word']]);
    assert.deepEqual([...vectors[0]!], [0, 0, 0, 0]);
    assert.deepEqual([...vectors[2]!], [0, 0, 0, 0]);
    assertVector(vectors[1]!, unit(rawVector('word', 4)));
  });

  test('a 500 and then a 429 are retried, and the third attempt succeeds', async () => {
    const fake = await startFakeOpenAI({
      nativeDimensions: 4,
      failures: [
        { status: 500, message: 'upstream failed', headers: RETRY_NOW },
        { status: 429, message: 'rate limited', headers: RETRY_NOW },
      ],
    });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 4, maxRetries: 2 }));
    const [vector] = await embedder.embed(['persistent']);

    assert.equal(fake.requests.length, 3);
    assert.deepEqual(fake.requests.map(({ headers }) => headers['x-stainless-retry-count']), ['0', '1', '2']);
    assertVector(vector!, unit(rawVector('persistent', 4)));
  });

  test('when retries run out, the error names the endpoint, model and status, and not the key the server echoed', async () => {
    const failure = { status: 503, message: 'overloaded for key sk-test-secret', headers: RETRY_NOW };
    const fake = await startFakeOpenAI({ nativeDimensions: 4, failures: [failure, failure] });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 4, maxRetries: 1 }));

    const error = await embedder.embed(['x']).then(() => assert.fail('expected a failure'), (caught: unknown) => caught);
    assert.ok(error instanceof EmbeddingServiceError);
    assert.equal(error.status, 503);
    assert.match(error.message, new RegExp(`^embeddings request to ${fake.baseURL}/embeddings \\(model test-embed\\) failed: HTTP 503 overloaded`));
    assert.doesNotMatch(error.message, /sk-test-secret/);
    assert.match(error.message, /\[redacted\]/);
    assert.equal(fake.requests.length, 2);
  });

  test('a client error such as 400 is not retried, and no further batch is sent', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 4, failures: [{ status: 400, message: 'input too long' }] });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 4, batchSize: 1, concurrency: 1 }));
    await assert.rejects(embedder.embed(['x', 'y', 'z']), (error: EmbeddingServiceError) => error.status === 400 && /input too long/.test(error.message));
    assert.equal(fake.requests.length, 1);
  });

  test('a vector of the wrong length is refused', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 4, wrongLength: true });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 4 }));
    await assert.rejects(embedder.embed(['x']), /\(model test-embed\) failed: expected vectors of 4 dimensions, got 5/);
  });

  test('a server that does not answer times out with a clear error', async () => {
    const fake = await startFakeOpenAI({ nativeDimensions: 4, silent: true });
    const embedder = await openOpenAIEmbedder(options(fake, { dimensions: 4, timeoutMs: 100, maxRetries: 0 }));
    await assert.rejects(embedder.embed(['x']), /failed: timed out after 100 ms$/);
  });

  test('an unreachable endpoint fails opening, naming it', async () => {
    const unreachable = `http://127.0.0.1:${await freePort()}/v1`;
    await assert.rejects(
      openOpenAIEmbedder({ baseURL: unreachable, model: 'test-embed', maxRetries: 0 }),
      (error: Error) =>
        error instanceof EmbeddingServiceError &&
        error.message === `embeddings request to ${unreachable}/embeddings (model test-embed) failed: connection failed: ECONNREFUSED`,
    );
  });
});
