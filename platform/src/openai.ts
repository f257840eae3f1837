/**
 * What the subgraphs that call OpenAI-compatible endpoints (chat completions, embeddings) share: the SDK
 * client set up from explicit options only, the endpoint as error messages show it, the API key kept out
 * of messages, and a failed call described in words. Each caller keeps its own error class, retries and
 * abort handling.
 *
 * Imported as `@jarvis/platform/openai`, not from the package root: loading the `openai` SDK takes about
 * 0.3 s, which the services that never call a model should not pay at start-up.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';

export interface OpenAIClientOptions {
  /** The API root: `https://api.openai.com/v1`, `http://localhost:11434/v1`; trailing slashes are dropped. */
  baseURL: string;
  /** Sent as `Authorization: Bearer …`; no header at all when absent, as local servers expect. */
  apiKey?: string | undefined;
  /** Per attempt, until the response headers arrive. */
  timeoutMs: number;
  /** The SDK's retries after the first attempt (408, 409, 429, 5xx and connection failures). */
  maxRetries: number;
}

/** Every option explicit, so the SDK reads nothing from the environment (OPENAI_API_KEY, OPENAI_BASE_URL). */
export function openAIClient(options: OpenAIClientOptions): OpenAI {
  return new OpenAI({
    baseURL: options.baseURL.replace(/\/+$/, ''),
    // The SDK insists on a key; without one the Authorization header is dropped instead.
    apiKey: options.apiKey ?? 'none',
    defaultHeaders: options.apiKey ? {} : { Authorization: null },
    organization: null,
    project: null,
    timeout: options.timeoutMs,
    maxRetries: options.maxRetries,
  });
}

/**
 * The endpoint `path` under `baseURL`, without credentials or query string, fit for error messages:
 * `endpointLabel('https://user:pw@host/v1/?x=1', '/embeddings')` is `https://host/v1/embeddings`.
 * Throws a RangeError when `baseURL` is not an absolute URL.
 */
export function endpointLabel(baseURL: string, path: string): string {
  let url: URL;
  try {
    url = new URL(baseURL);
  } catch {
    throw new RangeError('baseURL must be an absolute URL');
  }
  const root = `${url.origin}${url.pathname}`.replace(/\/+$/, '');
  return `${root}${path}`;
}

/** The message with every occurrence of the key replaced by `[redacted]`: a server may echo the key it was sent. */
export function redactKey(message: string, key: string | undefined): string {
  return key ? message.replaceAll(key, '[redacted]') : message;
}

export interface OpenAIErrorDescription {
  /** What went wrong, in words: `timed out after 60000 ms`, `connection failed: ECONNREFUSED`, `HTTP 429 …`. */
  reason: string;
  /** The HTTP status the server answered with, when it answered. */
  status: number | undefined;
}

/**
 * A failed SDK call described: its timeout (`timeoutMs` is the one the client was given), a connection that
 * failed, the server's HTTP status and message, or a connection lost mid-stream. A call the caller aborted
 * is the caller's to recognise before asking.
 */
export function describeOpenAIError(error: unknown, timeoutMs: number): OpenAIErrorDescription {
  if (error instanceof APIConnectionTimeoutError) return { reason: `timed out after ${timeoutMs} ms`, status: undefined };
  if (error instanceof APIConnectionError) return { reason: `connection failed: ${connectionCause(error)}`, status: undefined };
  if (error instanceof APIError && error.status !== undefined) {
    return { reason: `HTTP ${error.status} ${error.message.replace(/^\d{3}\s*/, '')}`.trim(), status: error.status };
  }
  if (error instanceof Error) {
    // undici reports a connection lost mid-body as TypeError('terminated') caused by a SocketError.
    const cause = error.cause instanceof Error && error.cause.message ? ` (${error.cause.message})` : '';
    const reason = error.message === 'terminated' ? 'the connection was lost mid-stream' : error.message || error.name;
    return { reason: `${reason}${cause}`, status: undefined };
  }
  return { reason: String(error), status: undefined };
}

/** The SDK wraps fetch's error, which wraps the socket's: the most specific code or message of the chain. */
function connectionCause(error: Error): string {
  const cause = error.cause as { message?: string; code?: string; cause?: { code?: string; message?: string } } | undefined;
  return cause?.cause?.code ?? cause?.code ?? cause?.cause?.message ?? cause?.message ?? error.message;
}
