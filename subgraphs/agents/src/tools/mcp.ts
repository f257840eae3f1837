/**
 * Jarvis's `call: jarvis.mcp` — a tool of an MCP server, over Streamable HTTP — with the MCP SDK's own client, every
 * HTTP request of which (redirects included) goes through the platform's outbound guard. One connection per call:
 * connect (initialize), list the server's tools, call the one named, end the session, close; nothing is kept.
 *
 * Failures are the `ToolError`s of `call: http` (see ./http.ts), plus `TOOL_NOT_FOUND` (configuration, 400) for a
 * tool the server does not list, `TOOL_FAILED` (communication, 500) for a result with `isError`, and `MCP_ERROR`
 * (communication; the HTTP status when there is one, else 500) for a server that answers outside the protocol.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { OutboundError, type OutboundGuard } from '@jarvis/platform/outbound';
import { ERROR_TYPES, MAX_ERROR_BODY_CHARS, outboundToolError, ToolError } from './http.ts';

export interface McpCallArgs {
  /** The server's Streamable HTTP endpoint. */
  server: string;
  tool: string;
  arguments?: Record<string, unknown>;
}

export interface McpOptions {
  signal?: AbortSignal;
  /** For the whole call: connecting, listing and calling. */
  timeoutMs?: number;
  /** Sent with every request to the server (an API key, say). */
  headers?: Record<string, string>;
}

export interface McpToolResult {
  content: unknown;
  structuredContent?: unknown;
  isError: boolean;
}

/** A tool as the agent loop offers it to a model. */
export interface McpTool {
  name: string;
  description?: string;
  inputSchema: Tool['inputSchema'];
}

export const DEFAULT_MCP_TIMEOUT_MS = 30_000;
/** Pages of `tools/list` read at most: a server that pages forever is not followed forever. */
const MAX_TOOL_PAGES = 20;
const CLIENT_INFO = { name: 'jarvis-agents', version: '0.1.0' };

/** Calls `tool` of the MCP server at `server`; a result with `isError` is a `TOOL_FAILED` ToolError. */
export async function mcpCall(guard: OutboundGuard, args: McpCallArgs, options: McpOptions = {}): Promise<McpToolResult> {
  if (typeof args.tool !== 'string' || !args.tool) throw new ToolError('tool must be named', 'INVALID_ARGUMENTS', 400, ERROR_TYPES.configuration);
  return withClient(guard, args.server, options, async (client, requestOptions) => {
    const tools = await listAll(client, requestOptions);
    if (!tools.some(({ name }) => name === args.tool)) throw notFound(args.tool);
    const result = (await client.callTool({ name: args.tool, arguments: args.arguments ?? {} }, undefined, requestOptions)) as CallToolResult;
    if (result.isError) {
      const text = textOf(result.content);
      throw new ToolError(`tool ${args.tool} failed${text ? `: ${truncate(text)}` : ''}`, 'TOOL_FAILED', 500, ERROR_TYPES.communication);
    }
    return {
      content: result.content ?? [],
      ...(result.structuredContent === undefined ? {} : { structuredContent: result.structuredContent }),
      isError: false,
    };
  });
}

/** The tools the MCP server at `server` lists: name, description and input schema. */
export async function mcpListTools(guard: OutboundGuard, server: string, options: McpOptions = {}): Promise<McpTool[]> {
  return withClient(guard, server, options, async (client, requestOptions) =>
    (await listAll(client, requestOptions)).map(({ name, description, inputSchema }) => ({
      name,
      ...(description === undefined ? {} : { description }),
      inputSchema,
    })),
  );
}

interface RequestOptions {
  signal: AbortSignal;
  timeout: number;
}

async function withClient<T>(
  guard: OutboundGuard,
  server: string,
  options: McpOptions,
  use: (client: Client, requestOptions: RequestOptions) => Promise<T>,
): Promise<T> {
  if (typeof server !== 'string' || !URL.canParse(server)) throw new ToolError('server must be a URL', 'INVALID_ARGUMENTS', 400, ERROR_TYPES.configuration);
  const timeoutMs = options.timeoutMs ?? DEFAULT_MCP_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const transport = new StreamableHTTPClientTransport(new URL(server), {
    fetch: guardedFetch(guard, signal),
    // The guard follows redirects itself, checking each: the SDK leaves them to it.
    redirectPolicy: 'follow',
    ...(options.headers ? { requestInit: { headers: options.headers } } : {}),
  });
  const client = new Client(CLIENT_INFO, { capabilities: {} });
  try {
    await client.connect(transport, { signal, timeout: timeoutMs });
    return await use(client, { signal, timeout: timeoutMs });
  } catch (error) {
    throw failure(error, options.signal, deadline, timeoutMs);
  } finally {
    // A stateful server's session ends with a DELETE (a 405 means it keeps none); a failure here changes nothing.
    if (transport.sessionId !== undefined && !signal.aborted) await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
}

/**
 * The guard's fetch in the shape the SDK's transport calls, bounded by the call's own signal. The GET the transport
 * opens after initializing (a standing SSE stream for messages the server starts, which a one-call client neither
 * needs nor could read: the guard reads answers whole) is answered here with the 405 the Streamable HTTP spec lets
 * a server give; a GET resuming a stream (Last-Event-ID) goes to the server.
 */
function guardedFetch(guard: OutboundGuard, signal: AbortSignal): FetchLike {
  return async (url, init = {}) => {
    const method = (init.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers);
    if (method === 'GET' && !headers.has('last-event-id')) return new Response(null, { status: 405, statusText: 'Method Not Allowed' });
    const { body } = init;
    if (body != null && typeof body !== 'string' && !(body instanceof Uint8Array) && !(body instanceof URLSearchParams)) {
      throw new TypeError('the MCP transport sent a body the outbound guard cannot send');
    }
    return guard.fetch(url, { method, headers, body: body ?? null, signal: init.signal ? AbortSignal.any([init.signal, signal]) : signal });
  };
}

async function listAll(client: Client, requestOptions: RequestOptions): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_TOOL_PAGES; page++) {
    const result = await client.listTools(cursor === undefined ? undefined : { cursor }, requestOptions);
    tools.push(...result.tools);
    cursor = result.nextCursor;
    if (!cursor) break;
  }
  return tools;
}

function failure(error: unknown, callerSignal: AbortSignal | undefined, deadline: AbortSignal, timeoutMs: number): unknown {
  if (error instanceof ToolError) return error;
  if (hasOutboundCause(error)) return outboundToolError(error, 'server');
  if (callerSignal?.aborted) return callerSignal.reason ?? error;
  if (deadline.aborted || (error instanceof McpError && error.code === ErrorCode.RequestTimeout)) {
    return new ToolError(`server did not answer within ${timeoutMs / 1000} s`, 'OUTBOUND_FAILED', 408, ERROR_TYPES.timeout, { cause: error });
  }
  if (error instanceof StreamableHTTPError) {
    const status = typeof error.code === 'number' && error.code >= 100 ? error.code : 500;
    return new ToolError(`server answered ${truncate(error.message)}`, 'MCP_ERROR', status, ERROR_TYPES.communication, { cause: error });
  }
  if (error instanceof McpError && error.code === ErrorCode.InvalidParams && /unknown tool|tool .* not found/i.test(error.message)) {
    return new ToolError(truncate(error.message), 'TOOL_NOT_FOUND', 400, ERROR_TYPES.configuration, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ToolError(`server answered outside the MCP protocol: ${truncate(message)}`, 'MCP_ERROR', 500, ERROR_TYPES.communication, { cause: error });
}

function hasOutboundCause(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) if (cause instanceof OutboundError) return true;
  return false;
}

function notFound(tool: string): ToolError {
  return new ToolError(`the server has no tool ${tool}`, 'TOOL_NOT_FOUND', 400, ERROR_TYPES.configuration);
}

function textOf(content: CallToolResult['content'] | undefined): string {
  return (content ?? [])
    .flatMap((part) => (part.type === 'text' ? [part.text] : []))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function truncate(text: string): string {
  return text.length > MAX_ERROR_BODY_CHARS ? `${text.slice(0, MAX_ERROR_BODY_CHARS)}…` : text;
}
