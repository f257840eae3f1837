/**
 * A local server speaking OpenAI's chat completions protocol as the real one does for `stream: true`:
 * `POST /v1/chat/completions` answers `text/event-stream` with `chat.completion.chunk` events (a first one
 * with the assistant role, one per content token, one with the finish reason, one with usage when
 * `stream_options.include_usage` asks for it) and `data: [DONE]`. Without `stream: true` it answers one
 * `chat.completion` JSON object, as the real one does. An answer may call tools (`toolCalls`): the message's
 * `tool_calls` (streamed as deltas, arguments in pieces) and finish reason `tool_calls`. Errors come as
 * OpenAI's JSON error body.
 *
 * Behaviour is scripted per model name (the request's `model`); each request takes the next scripted
 * behaviour, the last one repeating. Every request is recorded, with whether the client went away before
 * the response ended (`aborted`).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';

export type Behaviour =
  /** Streams `tokens`; waits `firstTokenDelayMs` before the first and `tokenDelayMs` between the others. */
  | {
      kind: 'answer';
      tokens: string[];
      firstTokenDelayMs?: number;
      tokenDelayMs?: number;
      /** The usage chunk's numbers; `null` sends none even when asked. Default: 17 prompt, one per token. */
      usage?: { promptTokens: number; completionTokens: number } | null;
    }
  /** Answers the HTTP status with OpenAI's error body. */
  | { kind: 'error'; status: number; message: string }
  /** Never sends a token: with `headers`, after sending the 200 and the role chunk; without, before anything. */
  | { kind: 'hang'; headers?: boolean }
  /** Streams the first `after` of `tokens`, then destroys the connection. */
  | { kind: 'break'; tokens: string[]; after: number }
  /** Streams `tokens` and ends the response without a finish reason or [DONE], as a proxy cutting off cleanly might. */
  | { kind: 'truncate'; tokens: string[] }
  /** Calls tools, with `content` (none by default) beside them; usage as for `answer` (default 17 prompt, 9 completion). */
  | { kind: 'toolCalls'; calls: { id: string; name: string; arguments: string }[]; content?: string; usage?: { promptTokens: number; completionTokens: number } | null };

export interface ChatCompletionBody {
  model: string;
  messages: {
    role: string;
    content: string | null;
    tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
    tool_call_id?: string;
  }[];
  tools?: { type: string; function: { name: string; description?: string; parameters: Record<string, unknown> } }[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
}

export interface RecordedRequest {
  model: string;
  body: ChatCompletionBody;
  headers: IncomingHttpHeaders;
  /** The client closed the connection before the response ended. */
  aborted: boolean;
  /** Resolves when the response is over, ended or cut off by either side. */
  closed: Promise<void>;
}

export interface FakeOpenAI {
  /** `http://127.0.0.1:<port>/v1` */
  baseURL: string;
  requests: RecordedRequest[];
  /** Behaviours for requests naming `model`, taken in turn; the last repeats. */
  script(model: string, ...behaviours: Behaviour[]): void;
  requestsFor(model: string): RecordedRequest[];
  close(): Promise<void>;
}

/** Starts the server on a free localhost port; it is closed after the calling test (or suite). */
export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const scripts = new Map<string, Behaviour[]>();
  const requests: RecordedRequest[] = [];

  const server = createServer(async (request, response) => {
    let raw = '';
    for await (const chunk of request) raw += chunk;
    if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
      return sendError(response, 404, `no route ${request.method} ${request.url}`);
    }
    const body = JSON.parse(raw) as ChatCompletionBody;
    let brokenByServer = false;
    let markClosed!: () => void;
    const recorded: RecordedRequest = {
      model: body.model,
      body,
      headers: request.headers,
      aborted: false,
      closed: new Promise<void>((resolve) => (markClosed = resolve)),
    };
    requests.push(recorded);
    response.on('close', () => {
      if (!response.writableEnded && !brokenByServer) recorded.aborted = true;
      markClosed();
    });

    const queue = scripts.get(body.model);
    const behaviour = queue && queue.length > 1 ? queue.shift()! : queue?.[0];
    if (!behaviour) return sendError(response, 404, `The model \`${body.model}\` does not exist`);
    if (behaviour.kind === 'error') return sendError(response, behaviour.status, behaviour.message);
    if (behaviour.kind === 'hang' && !behaviour.headers) return;

    const id = `chatcmpl-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    if (!body.stream) return answerWhole(response, behaviour, { id, created, model: body.model });
    const send = (choices: unknown[], extra: Record<string, unknown> = {}) => {
      if (response.destroyed) return;
      response.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices, ...extra })}\n\n`);
    };
    const delta = (content: string) => send([{ index: 0, delta: { content }, logprobs: null, finish_reason: null }]);

    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    send([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    if (behaviour.kind === 'hang') return;

    if (behaviour.kind === 'break') {
      for (const token of behaviour.tokens.slice(0, behaviour.after)) delta(token);
      await wait(30);
      brokenByServer = true;
      response.socket?.destroy();
      return;
    }

    if (behaviour.kind === 'truncate') {
      for (const token of behaviour.tokens) delta(token);
      response.end();
      return;
    }

    if (behaviour.kind === 'toolCalls') {
      if (behaviour.content) delta(behaviour.content);
      for (const [index, call] of behaviour.calls.entries()) {
        const half = Math.ceil(call.arguments.length / 2);
        const toolDelta = (fn: Record<string, string>, head: Record<string, unknown> = {}) =>
          send([{ index: 0, delta: { tool_calls: [{ index, ...head, function: fn }] }, logprobs: null, finish_reason: null }]);
        toolDelta({ name: call.name, arguments: '' }, { id: call.id, type: 'function' });
        toolDelta({ arguments: call.arguments.slice(0, half) });
        toolDelta({ arguments: call.arguments.slice(half) });
      }
      send([{ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' }]);
      const usage = behaviour.usage === undefined ? DEFAULT_TOOL_USAGE : behaviour.usage;
      if (body.stream_options?.include_usage && usage) {
        send([], { usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.promptTokens + usage.completionTokens } });
      }
      if (!response.destroyed) response.end('data: [DONE]\n\n');
      return;
    }

    for (const [i, token] of behaviour.tokens.entries()) {
      await wait(i === 0 ? (behaviour.firstTokenDelayMs ?? 0) : (behaviour.tokenDelayMs ?? 0));
      if (response.destroyed) return;
      delta(token);
    }
    send([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
    const usage = behaviour.usage === undefined ? { promptTokens: 17, completionTokens: behaviour.tokens.length } : behaviour.usage;
    if (body.stream_options?.include_usage && usage) {
      send([], {
        usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.promptTokens + usage.completionTokens },
      });
    }
    if (!response.destroyed) response.end('data: [DONE]\n\n');
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  after(close);

  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests,
    script: (model, ...behaviours) => void scripts.set(model, behaviours),
    requestsFor: (model) => requests.filter((request) => request.model === model),
    close,
  };
}

const DEFAULT_TOOL_USAGE = { promptTokens: 17, completionTokens: 9 };

/** A non-streaming request's answer: one `chat.completion` object (or the behaviour's failure). */
async function answerWhole(response: ServerResponse, behaviour: Behaviour, { id, created, model }: { id: string; created: number; model: string }) {
  if (behaviour.kind === 'hang') return;
  if (behaviour.kind === 'error') return sendError(response, behaviour.status, behaviour.message);
  if (behaviour.kind === 'break' || behaviour.kind === 'truncate') {
    response.socket?.destroy();
    return;
  }
  let message: Record<string, unknown>;
  let usage: { promptTokens: number; completionTokens: number } | null;
  let finish: string;
  if (behaviour.kind === 'toolCalls') {
    message = {
      role: 'assistant',
      content: behaviour.content ?? null,
      refusal: null,
      tool_calls: behaviour.calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
    };
    usage = behaviour.usage === undefined ? DEFAULT_TOOL_USAGE : behaviour.usage;
    finish = 'tool_calls';
  } else {
    await wait(behaviour.firstTokenDelayMs ?? 0);
    message = { role: 'assistant', content: behaviour.tokens.join(''), refusal: null };
    usage = behaviour.usage === undefined ? { promptTokens: 17, completionTokens: behaviour.tokens.length } : behaviour.usage;
    finish = 'stop';
  }
  if (response.destroyed) return;
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(
    JSON.stringify({
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
      ...(usage ? { usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.promptTokens + usage.completionTokens } } : {}),
    }),
  );
}

function sendError(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } }));
}

function wait(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
