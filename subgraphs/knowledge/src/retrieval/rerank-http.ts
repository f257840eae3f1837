/**
 * The rerank port over a cross-encoder service, in one of the three request shapes such services speak:
 * Hugging Face text-embeddings-inference (`tei`), Jina's (`jina`, also served by vLLM, Infinity and
 * LiteLLM at /v1/rerank) and Cohere's v2 (`cohere`). Each answers with passage indexes and scores, mapped
 * back to passage ids here.
 */
import { redactKey } from '@jarvis/platform/openai';
import { byScoreDescending, type ScoredId } from './ranking.ts';
import type { Reranker, RerankPassage } from './rerank.ts';

export type RerankApi = 'tei' | 'jina' | 'cohere';

export interface HttpRerankerOptions {
  api: RerankApi;
  /** The service root, without the API's path: `http://localhost:8080`, `https://api.jina.ai`. */
  url: string;
  /** Required by `jina` and `cohere`; a TEI server serves the one model it was started with. */
  model?: string;
  /** Sent as `Authorization: Bearer …` when present. */
  apiKey?: string;
  timeoutMs?: number;
  /**
   * Passages are cut to this many characters (at a word boundary) before sending, which bounds the
   * request; the service truncates further to its model's window.
   */
  maxPassageChars?: number;
}

export const HTTP_RERANK_DEFAULTS = { timeoutMs: 10_000, maxPassageChars: 4_000 } as const;

export type RerankErrorCode = 'TIMEOUT' | 'UNREACHABLE' | 'HTTP_STATUS' | 'BAD_RESPONSE';

/** A failed rerank call; the message names the endpoint and API, never the API key. */
export class RerankError extends Error {
  constructor(
    message: string,
    readonly code: RerankErrorCode,
    /** The HTTP status, for `HTTP_STATUS`. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RerankError';
  }
}

interface ApiShape {
  path: string;
  body(query: string, documents: string[], topN: number, model: string | undefined): object;
  /** The `{index, score}` pairs of a response body, or undefined when it is not of this API's shape. */
  results(body: unknown): unknown[] | undefined;
  score(result: Record<string, unknown>): unknown;
}

/** TEI scores every passage and has no top_n; it truncates to its model's window only when asked to. */
const TEI: ApiShape = {
  path: '/rerank',
  body: (query, texts) => ({ query, texts, raw_scores: false, truncate: true }),
  results: (body) => (Array.isArray(body) ? body : undefined),
  score: (result) => result.score,
};

const JINA: ApiShape = {
  path: '/v1/rerank',
  body: (query, documents, topN, model) => ({ model, query, documents, top_n: topN, return_documents: false }),
  results: resultsField,
  score: (result) => result.relevance_score,
};

const COHERE: ApiShape = {
  path: '/v2/rerank',
  body: (query, documents, topN, model) => ({ model, query, documents, top_n: topN }),
  results: resultsField,
  score: (result) => result.relevance_score,
};

const SHAPES: Record<RerankApi, ApiShape> = { tei: TEI, jina: JINA, cohere: COHERE };

function resultsField(body: unknown): unknown[] | undefined {
  const results = (body as { results?: unknown } | null)?.results;
  return Array.isArray(results) ? results : undefined;
}

export class HttpReranker implements Reranker {
  /** `<api>:<model>`, or `tei:<host>` for a TEI server without a configured model name. */
  readonly id: string;
  private readonly endpoint: string;
  private readonly shape: ApiShape;
  private readonly timeoutMs: number;
  private readonly maxPassageChars: number;

  constructor(private readonly options: HttpRerankerOptions) {
    this.shape = SHAPES[options.api];
    if (!this.shape) throw new RangeError(`unknown rerank api "${String(options.api)}"; expected tei, jina or cohere`);
    if (options.api !== 'tei' && !options.model) throw new RangeError(`the ${options.api} rerank api needs a model`);
    const root = URL.canParse(options.url) ? new URL(options.url) : undefined;
    if (!root) throw new RangeError('the rerank url must be an absolute URL');
    this.endpoint = `${root.origin}${root.pathname.replace(/\/+$/, '')}${this.shape.path}`;
    this.id = `${options.api}:${options.model ?? root.host}`;
    this.timeoutMs = options.timeoutMs ?? HTTP_RERANK_DEFAULTS.timeoutMs;
    this.maxPassageChars = options.maxPassageChars ?? HTTP_RERANK_DEFAULTS.maxPassageChars;
  }

  async rerank(query: string, passages: RerankPassage[], topN: number): Promise<ScoredId[]> {
    const wanted = Math.min(topN, passages.length);
    if (wanted < 1) return [];
    const documents = passages.map((passage) => truncated(withTitle(passage), this.maxPassageChars));
    const body = this.shape.body(truncated(query, this.maxPassageChars), documents, wanted, this.options.model);
    const results = this.shape.results(await this.post(body));
    if (!results) throw this.error('BAD_RESPONSE', 'malformed response: not the expected list of results');
    return this.scoredIds(results, passages).slice(0, wanted);
  }

  private async post(body: object): Promise<unknown> {
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: this.headers(),
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw this.transportError(error);
    }
    if (!response.ok) throw this.error('HTTP_STATUS', `HTTP ${response.status}: ${text.slice(0, 300)}`, response.status);
    try {
      return JSON.parse(text);
    } catch {
      throw this.error('BAD_RESPONSE', 'malformed response: not JSON');
    }
  }

  private headers(): Record<string, string> {
    const auth: Record<string, string> = this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
    return { 'content-type': 'application/json', accept: 'application/json', ...auth };
  }

  private scoredIds(results: unknown[], passages: RerankPassage[]): ScoredId[] {
    const seen = new Set<number>();
    const scored = results.map((result) => {
      const entry = (result ?? {}) as Record<string, unknown>;
      const { index } = entry;
      const score = this.shape.score(entry);
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= passages.length || seen.has(index)) {
        throw this.error('BAD_RESPONSE', `malformed response: passage index ${String(index)} is out of range or repeated`);
      }
      if (typeof score !== 'number' || !Number.isFinite(score)) {
        throw this.error('BAD_RESPONSE', `malformed response: no numeric score for passage index ${index}`);
      }
      seen.add(index);
      return { id: passages[index]!.id, score };
    });
    return scored.sort(byScoreDescending);
  }

  private transportError(error: unknown): RerankError {
    if (error instanceof Error && error.name === 'TimeoutError') return this.error('TIMEOUT', `timed out after ${this.timeoutMs} ms`);
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return this.error('UNREACHABLE', `connection failed: ${cause?.code ?? cause?.message ?? String(error)}`);
  }

  private error(code: RerankErrorCode, reason: string, status?: number): RerankError {
    const message = `rerank request to ${this.endpoint} (${this.options.api}) failed: ${reason}`;
    return new RerankError(redactKey(message, this.options.apiKey), code, status);
  }
}

/** A cross-encoder reads the title with the passage; one already at the start of the text is not repeated. */
function withTitle({ title, text }: RerankPassage): string {
  return title && !text.startsWith(title) ? `${title}\n${text}` : text;
}

/** Cut at the last whitespace in the final fifth when there is one, and never inside a surrogate pair. */
function truncated(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let cut = text.slice(0, maxChars);
  const lastSpace = cut.search(/\s\S*$/);
  if (lastSpace >= maxChars * 0.8) cut = cut.slice(0, lastSpace);
  else if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut;
}
