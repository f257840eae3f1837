import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '@jarvis/platform/config';
import { HttpReranker } from '../src/retrieval/rerank-http.ts';
import { LocalReranker } from '../src/retrieval/rerank.ts';
import { openEmbedder, rerankerOf } from '../src/retrieval/models.ts';

test('without a model service the embedder and reranker are the local ones, EMBEDDING_DIMENSIONS sizing the embedder', async () => {
  const config = loadConfig({ EMBEDDING_DIMENSIONS: '256' });
  const embedder = await openEmbedder(config);
  assert.equal(embedder.id, 'local-hash-v1-256');
  assert.equal((await embedder.embed(['a text']))[0]!.length, 256);
  assert.ok(rerankerOf(config) instanceof LocalReranker);
});

test('EMBEDDING_MODEL without the server to run it is a configuration error', async () => {
  await assert.rejects(openEmbedder(loadConfig({ EMBEDDING_MODEL: 'text-embedding-3-small' })), ConfigError);
});

test('RERANK_URL selects the HTTP reranker with the configured API shape and model', () => {
  const reranker = rerankerOf(loadConfig({ RERANK_URL: 'http://127.0.0.1:8080', RERANK_API: 'jina', RERANK_MODEL: 'jina-reranker-v2' }));
  assert.ok(reranker instanceof HttpReranker);
  assert.equal(reranker.id, 'jina:jina-reranker-v2');
});
