/**
 * The embedder port over any OpenAI-compatible embeddings endpoint (OpenAI, Azure-style gateways, vLLM,
 * Ollama, LiteLLM, TEI), through the `openai` SDK. Texts go in batches, a few batches at a time; each vector
 * is placed by the `index` the server gives it, checked for length and finiteness, and L2-normalised.
 *
 * Retries are the SDK's: it retries 408, 409, 429, 5xx and connection failures with exponential backoff
 * (0.5 s doubling to 8 s, with jitter), honouring `retry-after-ms` and `retry-after`. The SDK asks for
 * base64 by default and decodes it; servers that ignore `encoding_format` and answer with float arrays work too.
 */
import { definedOnly } from '@jarvis/platform/options';
import type { Embedder } from '@jarvis/platform/text';
import { describeOpenAIError, endpointLabel, openAIClient, redactKey } from '@jarvis/platform/openai';
import type { OpenAI } from 'openai';

export interface OpenAIEmbedderOptions {
  /** The API root, `/embeddings` is appended: `https://api.openai.com/v1`, `http://localhost:11434/v1`. */
  baseURL: string;
  /** Sent as `Authorization: Bearer …`; no header at all when absent, as local servers expect. */
  apiKey?: string;
  model: string;
  /**
   * Output dimensions. When set, it is sent as the `dimensions` parameter (models that can shorten their
   * vectors honour it; some servers refuse it for others) and every vector must have that length. When
   * absent, `openOpenAIEmbedder` asks the model once and uses the length it answers with.
   */
  dimensions?: number;
  /** Inputs per request; OpenAI takes up to 2048, self-hosted servers often far fewer. */
  batchSize?: number;
  /** Requests in flight at once for one `embed` call. */
  concurrency?: number;
  /** Per attempt. */
  timeoutMs?: number;
  /** Retries after the first attempt, for 408/409/429/5xx and connection failures. */
  maxRetries?: number;
}

export const OPENAI_EMBEDDER_DEFAULTS = {
  batchSize: 96,
  concurrency: 2,
  timeoutMs: 60_000,
  maxRetries: 3,
} as const;

/** A failed or unusable embeddings call; the message names the endpoint and model, never the API key. */
export class EmbeddingServiceError extends Error {
  /** The HTTP status the server answered with, when it answered. */
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(message);
    this.name = 'EmbeddingServiceError';
    this.status = status;
  }
}

interface Settings {
  endpoint: string;
  model: string;
  requestedDimensions: number | undefined;
  batchSize: number;
  concurrency: number;
  timeoutMs: number;
  apiKey: string | undefined;
}

type EmbeddingItem = { index: number; embedding: unknown };

/**
 * An embedder for the endpoint; when `dimensions` is not configured it embeds one probe text to learn them,
 * so a misconfigured endpoint fails here, at start-up, rather than on the first document.
 */
export async function openOpenAIEmbedder(options: OpenAIEmbedderOptions): Promise<OpenAIEmbedder> {
  const settings = settingsOf(options);
  const client = clientOf(options);
  const dimensions = options.dimensions ?? (await probeDimensions(client, settings));
  return new OpenAIEmbedder(client, settings, dimensions);
}

export class OpenAIEmbedder implements Embedder {
  /** `openai:<model>-<dimensions>`. */
  readonly id: string;

  /** Use `openOpenAIEmbedder`. */
  constructor(
    private readonly client: OpenAI,
    private readonly settings: Settings,
    readonly dimensions: number,
  ) {
    this.id = `openai:${settings.model}-${dimensions}`;
  }

  /** Blank texts get the zero vector without a request: the API refuses empty input. */
  async embed(texts: string[]): Promise<Float32Array[]> {
    const vectors: Float32Array[] = texts.map(() => new Float32Array(this.dimensions));
    const sendable = texts.flatMap((text, position) => (text.trim() ? [position] : []));
    const batches = chunked(sendable, this.settings.batchSize);
    await forEachLimited(batches, this.settings.concurrency, async (positions) => {
      const embedded = await requestEmbeddings(this.client, this.settings, positions.map((position) => texts[position]!));
      embedded.forEach((vector, i) => (vectors[positions[i]!] = checkedLength(vector, this.dimensions, this.settings)));
    });
    return vectors;
  }
}

function settingsOf(options: OpenAIEmbedderOptions): Settings {
  const { batchSize, concurrency, timeoutMs } = { ...OPENAI_EMBEDDER_DEFAULTS, ...definedOnly(options) };
  for (const [name, value] of Object.entries({ batchSize, concurrency, dimensions: options.dimensions ?? 1 })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return {
    endpoint: endpointLabel(options.baseURL, '/embeddings'),
    model: options.model,
    requestedDimensions: options.dimensions,
    batchSize,
    concurrency,
    timeoutMs,
    apiKey: options.apiKey,
  };
}

function clientOf(options: OpenAIEmbedderOptions): OpenAI {
  const { timeoutMs, maxRetries } = { ...OPENAI_EMBEDDER_DEFAULTS, ...definedOnly(options) };
  return openAIClient({ baseURL: options.baseURL, apiKey: options.apiKey, timeoutMs, maxRetries });
}

async function probeDimensions(client: OpenAI, settings: Settings): Promise<number> {
  const [vector] = await requestEmbeddings(client, settings, ['dimension probe']);
  if (!vector || vector.length === 0) throw serviceError(settings, 'the probe returned an empty vector');
  return vector.length;
}

async function requestEmbeddings(client: OpenAI, settings: Settings, input: string[]): Promise<Float32Array[]> {
  const dimensions = settings.requestedDimensions === undefined ? {} : { dimensions: settings.requestedDimensions };
  let data: EmbeddingItem[];
  try {
    data = (await client.embeddings.create({ model: settings.model, input, ...dimensions })).data;
  } catch (error) {
    throw wrapped(error, settings);
  }
  return inInputOrder(data, input.length, settings);
}

/** Servers may answer out of order: each item's `index` says which input it embeds. */
function inInputOrder(data: EmbeddingItem[], expected: number, settings: Settings): Float32Array[] {
  if (!Array.isArray(data) || data.length !== expected) {
    throw serviceError(settings, `expected ${expected} embeddings, got ${Array.isArray(data) ? data.length : 'none'}`);
  }
  const ordered: Float32Array[] = new Array(expected);
  for (const item of data) {
    const { index } = item;
    if (!Number.isInteger(index) || index < 0 || index >= expected || ordered[index]) {
      throw serviceError(settings, `embedding index ${String(index)} is out of range or repeated`);
    }
    ordered[index] = normalized(item.embedding, settings);
  }
  return ordered;
}

function normalized(embedding: unknown, settings: Settings): Float32Array {
  const isNumeric = Array.isArray(embedding) || embedding instanceof Float32Array;
  if (!isNumeric || ![...embedding].every((value) => typeof value === 'number' && Number.isFinite(value))) {
    throw serviceError(settings, 'an embedding is not an array of finite numbers');
  }
  const vector = Float32Array.from(embedding as ArrayLike<number>);
  let squaredNorm = 0;
  for (const value of vector) squaredNorm += value * value;
  if (squaredNorm === 0) return vector;
  const inverse = 1 / Math.sqrt(squaredNorm);
  return vector.map((value) => value * inverse);
}

function checkedLength(vector: Float32Array, dimensions: number, settings: Settings): Float32Array {
  if (vector.length !== dimensions) {
    throw serviceError(settings, `expected vectors of ${dimensions} dimensions, got ${vector.length}`);
  }
  return vector;
}

function wrapped(error: unknown, settings: Settings): EmbeddingServiceError {
  const { reason, status } = describeOpenAIError(error, settings.timeoutMs);
  return serviceError(settings, reason, status);
}

function serviceError(settings: Settings, reason: string, status?: number): EmbeddingServiceError {
  const message = `embeddings request to ${settings.endpoint} (model ${settings.model}) failed: ${reason}`;
  return new EmbeddingServiceError(redactKey(message, settings.apiKey), status);
}

function chunked<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/** Runs `work` over the items with at most `limit` in flight; the first failure rejects and starts no more. */
async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      await work(items[next++]!).catch((error: unknown) => {
        failed = true;
        throw error;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
