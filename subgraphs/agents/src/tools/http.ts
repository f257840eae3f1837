/**
 * The DSL's `call: http` (Serverless Workflow 1.0 dsl-reference, "HTTP Call"), made through the platform's one
 * outbound guard, and the allow-list an agent's HTTP tools are checked against. Failures are `ToolError`s carrying
 * the DSL's standard error type and a status, so a workflow's `try`/`catch` can tell them apart:
 *
 * - the server answered outside 2xx (3xx too unless `redirect`): `HTTP_ERROR`, communication, that status;
 * - the guard refused the URL, an address it reaches, a redirect or the size of the answer: `OUTBOUND_REFUSED`,
 *   authorization, 403;
 * - the host does not resolve or cannot be reached: `OUTBOUND_FAILED`, communication, 500; it did not answer in
 *   time: `OUTBOUND_FAILED`, timeout, 408;
 * - arguments no request can be made of: `INVALID_ARGUMENTS`, configuration, 400.
 *
 * The caller's own abort is not a tool error: its reason is thrown as it is.
 */
import { OutboundError, OutboundFailedError, OutboundRefusedError, type OutboundGuard } from '@jarvis/platform/outbound';

import { ERROR_TYPES } from '../runs/engine/errors.ts';

export { ERROR_TYPES };

/** How much of an answer's body an error message quotes, at most. */
export const MAX_ERROR_BODY_CHARS = 500;

/** A tool call that failed, as the engine matches it: a stable `code`, the DSL error `type` and a `status`. */
export class ToolError extends Error {
  override name = 'ToolError';

  constructor(
    message: string,
    readonly code: string,
    readonly status?: number,
    readonly type?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface HttpCallArgs {
  method: string;
  endpoint: string | { uri: string };
  headers?: Record<string, string>;
  body?: unknown;
  query?: Record<string, string | number | boolean>;
  /** `content` (the default): the body, parsed when JSON; `response`: the DSL's HTTP response; `raw`: base64. */
  output?: 'content' | 'response' | 'raw';
  /** The DSL's `redirect`: whether a 3xx answer the guard did not follow (no Location) is a result, not an error. */
  redirect?: boolean;
}

/** The DSL's HTTP response (dsl-reference, "HTTP Response"). */
export interface HttpResponse {
  request: { method: string; uri: string; headers: Record<string, string> };
  statusCode: number;
  headers: Record<string, string>;
  content: unknown;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Request headers not repeated in a `response` output: it is workflow data, kept with the run. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);

/**
 * One HTTP request through `guard`, as the DSL's `call: http` makes it. A body that is not a string or bytes is
 * sent as JSON (with `content-type: application/json` unless a content type is given); `query` is added to the
 * endpoint's own query. The answer's content is its JSON parsed when it is JSON, its text when it is text (or
 * decodes as UTF-8), and base64 otherwise; `null` when there is none.
 */
export async function httpCall(guard: OutboundGuard, args: HttpCallArgs, signal?: AbortSignal): Promise<unknown> {
  const method = typeof args.method === 'string' ? args.method.toUpperCase() : '';
  if (!TOKEN.test(method)) throw invalid('method must be an HTTP method');
  const url = endpointUrl(args.endpoint, args.query);
  const headers = new Headers(args.headers);
  const body = requestBody(args.body, headers);
  if (body !== null && (method === 'GET' || method === 'HEAD')) throw invalid(`a ${method} request has no body`);
  const output = args.output ?? 'content';
  if (!['content', 'response', 'raw'].includes(output)) throw invalid('output must be content, response or raw');

  let response: Response;
  try {
    response = await guard.fetch(url, { method, headers, body, signal });
  } catch (error) {
    throw outboundToolError(error, 'endpoint', signal);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const last = response.status < 300 || (args.redirect === true && response.status < 400);
  if (!last) {
    throw new ToolError(
      `${method} ${describeUrl(url)} answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${excerpt(bytes)}`,
      'HTTP_ERROR',
      response.status,
      ERROR_TYPES.communication,
    );
  }
  if (output === 'raw') return bytes.byteLength ? Buffer.from(bytes).toString('base64') : null;
  const content = decodeContent(bytes, response.headers.get('content-type'), method, url);
  if (output === 'content') return content;
  const sent: Record<string, string> = {};
  for (const [name, value] of headers) if (!SECRET_HEADERS.has(name)) sent[name] = value;
  return {
    request: { method, uri: url.href, headers: sent },
    statusCode: response.status,
    headers: Object.fromEntries(response.headers),
    content,
  } satisfies HttpResponse;
}

/**
 * The ToolError for what the guard (or the request around it) threw; the caller's abort is returned as it is.
 * `subject` names the URL in the message: "endpoint resolves to a loopback address".
 */
export function outboundToolError(error: unknown, subject: string, callerSignal?: AbortSignal): unknown {
  if (error instanceof ToolError) return error;
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof OutboundRefusedError) {
      return new ToolError(`${subject} ${cause.message}`, 'OUTBOUND_REFUSED', 403, ERROR_TYPES.authorization, { cause: error });
    }
    if (cause instanceof OutboundFailedError) {
      const timedOut = cause.message.includes('did not answer within');
      return new ToolError(`${subject} ${cause.message}`, 'OUTBOUND_FAILED', timedOut ? 408 : 500, timedOut ? ERROR_TYPES.timeout : ERROR_TYPES.communication, {
        cause: error,
      });
    }
    if (cause instanceof OutboundError) {
      return new ToolError(`${subject} ${cause.message}`, 'OUTBOUND_FAILED', 500, ERROR_TYPES.communication, { cause: error });
    }
  }
  if (callerSignal?.aborted) return callerSignal.reason ?? error;
  const message = error instanceof Error ? error.message : String(error);
  return new ToolError(`${subject} could not be called: ${truncate(message)}`, 'OUTBOUND_FAILED', 500, ERROR_TYPES.communication, { cause: error });
}

/**
 * Whether one of an agent's HTTP tools allows `method` on `url`: the same scheme, host and port as the tool's URL,
 * its path matched segment by segment (each `{variable}` of the RFC 6570 template filling part of one segment:
 * no `/`, encoded or not, no `.` or `..` segment), and the method listed (any case). The URL is judged as it will
 * be sent (dot segments resolved). A template's query, if it has one, must match the URL's query the same way (a
 * variable fills no `&`); without one, any query is allowed (query parameters are arguments, like a body). Only
 * the DSL's simple `{name}` expansion is understood: a template with another operator, or a variable outside the
 * path and query, allows nothing.
 */
export function allowedBy(tools: readonly { url: string; methods: readonly string[] }[], method: string, url: string): boolean {
  if (!URL.canParse(url)) return false;
  const called = new URL(url);
  if (called.username || called.password) return false;
  const verb = method.toUpperCase();
  return tools.some((tool) => tool.methods.some((listed) => listed.toUpperCase() === verb) && templateMatches(tool.url, called));
}

const VARIABLE = /\{([^{}]*)\}/g;
const VARIABLE_NAME = /^(?:[A-Za-z0-9_.]|%[0-9A-Fa-f]{2})+$/;

function templateMatches(template: string, called: URL): boolean {
  // Each variable becomes a marker that survives URL parsing unchanged, so literal parts are normalised as the
  // called URL's are.
  const marker = (index: number) => `jarvistemplatevar${index}x`;
  let count = 0;
  let wellFormed = true;
  const marked = template.replace(VARIABLE, (_match, name: string) => {
    if (!VARIABLE_NAME.test(name)) wellFormed = false;
    return marker(count++);
  });
  if (!wellFormed || /[{}]/.test(marked) || !URL.canParse(marked)) return false;
  const parsed = new URL(marked);
  if (/jarvistemplatevar\d+x/.test(`${parsed.protocol}//${parsed.username}:${parsed.password}@${parsed.host}`)) return false;
  if (parsed.protocol !== called.protocol || parsed.hostname !== called.hostname || parsed.port !== called.port) return false;

  const want = parsed.pathname.split('/');
  const got = called.pathname.split('/');
  if (want.length !== got.length || !want.every((part, i) => partMatches(part, got[i]!, '/'))) return false;
  if (!parsed.search) return true;
  const wantQuery = parsed.search.slice(1).split('&');
  const gotQuery = called.search.slice(1).split('&');
  return wantQuery.length === gotQuery.length && wantQuery.every((part, i) => partMatches(part, gotQuery[i]!, '&'));
}

/** One path segment (or query pair) of a marked template against the called URL's. */
function partMatches(pattern: string, actual: string, separator: '/' | '&'): boolean {
  const pieces = pattern.split(/jarvistemplatevar\d+x/);
  if (pieces.length === 1) return pattern === actual;
  const regex = new RegExp(`^${pieces.map(escapeRegExp).join(separator === '/' ? '([^/]+)' : '([^&#]+)')}$`);
  const match = regex.exec(actual);
  if (!match) return false;
  for (const value of match.slice(1)) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(value!);
    } catch {
      return false;
    }
    if (decoded.includes('/') || decoded.includes('\\') || decoded === '.' || decoded === '..' || (separator === '&' && decoded.includes('&'))) {
      return false;
    }
  }
  if (separator === '/') {
    const segment = safeDecode(actual);
    if (segment === undefined || segment === '.' || segment === '..') return false;
  }
  return true;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

function invalid(message: string): ToolError {
  return new ToolError(message, 'INVALID_ARGUMENTS', 400, ERROR_TYPES.configuration);
}

function endpointUrl(endpoint: HttpCallArgs['endpoint'], query: HttpCallArgs['query']): URL {
  const uri = typeof endpoint === 'string' ? endpoint : endpoint && typeof endpoint === 'object' ? endpoint.uri : undefined;
  if (typeof uri !== 'string' || !URL.canParse(uri)) throw invalid('endpoint must be a URL or { uri }');
  const url = new URL(uri);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (!['string', 'number', 'boolean'].includes(typeof value)) throw invalid(`query parameter ${name} must be a string, a number or a boolean`);
    url.searchParams.append(name, String(value));
  }
  return url;
}

function requestBody(body: unknown, headers: Headers): string | Uint8Array | null {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  return JSON.stringify(body);
}

/** The URL for a message: no user name, password, query or fragment (they may carry secrets). */
function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function truncate(text: string): string {
  return text.length > MAX_ERROR_BODY_CHARS ? `${text.slice(0, MAX_ERROR_BODY_CHARS)}…` : text;
}

/** At most MAX_ERROR_BODY_CHARS of an error answer's body, on one line, after a colon; nothing when empty. */
function excerpt(bytes: Uint8Array): string {
  const text = new TextDecoder().decode(bytes.subarray(0, MAX_ERROR_BODY_CHARS * 4)).replace(/\s+/g, ' ').trim();
  return text ? `: ${truncate(text)}` : '';
}

function mediaType(contentType: string | null): { essence: string; charset: string | undefined } {
  const [essence = '', ...parameters] = (contentType ?? '').split(';');
  const charset = parameters
    .map((parameter) => parameter.trim().match(/^charset\s*=\s*"?([^";]+)"?$/i)?.[1])
    .find((value) => value !== undefined);
  return { essence: essence.trim().toLowerCase(), charset };
}

const isJson = (essence: string) => essence === 'application/json' || essence.endsWith('+json');
const isText = (essence: string) =>
  essence.startsWith('text/') ||
  essence.endsWith('+xml') ||
  ['application/xml', 'application/javascript', 'application/x-www-form-urlencoded', 'application/yaml', 'application/x-yaml'].includes(essence);

function decodeContent(bytes: Uint8Array, contentType: string | null, method: string, url: URL): unknown {
  if (!bytes.byteLength) return null;
  const { essence, charset } = mediaType(contentType);
  if (isJson(essence)) {
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (error) {
      throw new ToolError(`${method} ${describeUrl(url)} answered ${essence} that is not JSON`, 'INVALID_RESPONSE', 500, ERROR_TYPES.communication, { cause: error });
    }
  }
  if (isText(essence)) {
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(charset ?? 'utf-8');
    } catch {
      decoder = new TextDecoder();
    }
    return decoder.decode(bytes);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return Buffer.from(bytes).toString('base64');
  }
}
