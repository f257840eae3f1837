/** The embedder and reranker the configuration names: local ones unless a model service is configured. */
import { ConfigError, type Config } from '@jarvis/platform/config';
import { LocalHashEmbedder, type Embedder } from '@jarvis/platform/text';
import { openOpenAIEmbedder } from './openai-embedder.ts';
import { HttpReranker } from './rerank-http.ts';
import { LocalReranker, type Reranker } from './rerank.ts';

/** EMBEDDING_MODEL at OPENAI_BASE_URL (any OpenAI-compatible server), else the local hashed embedder. */
export async function openEmbedder(config: Config): Promise<Embedder> {
  if (!config.EMBEDDING_MODEL) return new LocalHashEmbedder(config.EMBEDDING_DIMENSIONS);
  if (!config.OPENAI_BASE_URL) throw new ConfigError('EMBEDDING_MODEL needs OPENAI_BASE_URL: the server that embeds with it');
  return openOpenAIEmbedder({
    baseURL: config.OPENAI_BASE_URL,
    model: config.EMBEDDING_MODEL,
    ...(config.OPENAI_API_KEY ? { apiKey: config.OPENAI_API_KEY } : {}),
    ...(config.EMBEDDING_DIMENSIONS ? { dimensions: config.EMBEDDING_DIMENSIONS } : {}),
  });
}

/** A cross-encoder service at RERANK_URL speaking RERANK_API, else the local reranker. */
export function rerankerOf(config: Config): Reranker {
  if (!config.RERANK_URL) return new LocalReranker();
  return new HttpReranker({
    api: config.RERANK_API,
    url: config.RERANK_URL,
    ...(config.RERANK_MODEL ? { model: config.RERANK_MODEL } : {}),
    ...(config.RERANK_API_KEY ? { apiKey: config.RERANK_API_KEY } : {}),
  });
}
