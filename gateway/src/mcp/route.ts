/**
 * The gateway's Model Context Protocol endpoint: Streamable HTTP, stateless (a server and transport per
 * request, no session), so any replica answers any request. Its tools run as the caller's GraphQL operations
 * through the gateway's own GraphQL route (graphql.ts): no policy is applied here, nor skipped.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CallToolRequestSchema, ErrorCode as RpcCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Principal } from '@jarvis/platform/contracts';
import { AppError, ErrorCode } from '@jarvis/platform/errors';
import { graphQLCaller, ToolFailure, type GraphQLCaller } from './graphql.ts';
import { FIXED_TOOLS } from './tools.ts';
import { startWorkflow, WORKFLOW_TOOL_PREFIX, workflowTools } from './workflows.ts';

export interface McpOptions {
  path: string;
  /** The gateway's GraphQL route, which every tool's operations go through. */
  graphqlPath: string;
  /** The gateway's authenticator: an Authorization header to a principal, or an UNAUTHENTICATED AppError. */
  authenticate(authorization: string | undefined): Promise<Principal>;
}

/** JSON-RPC's implementation-defined server error: what the SDK answers refusals at the HTTP level with. */
const REFUSED = -32000;

const SERVER_INFO = { name: 'jarvis', version: '1.0.0' };
const INSTRUCTIONS =
  'Jarvis: search and ask the knowledge bases you may read, and start the workflows your tenant published ' +
  '(workflow_<name>), following their runs with get_run. Every tool acts as you, with your permissions.';

export function serveMcp(app: FastifyInstance, { path, graphqlPath, authenticate }: McpOptions): void {
  void app.register(async (scope) => {
    // JSON only, read within the gateway's body limit; anything else is refused before the transport sees it.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, scope.getDefaultJsonParser('error', 'error'));
    scope.setErrorHandler(requestErrorHandler);

    // Stateless: no stream to open with GET, no session to end with DELETE.
    scope.route({
      method: ['GET', 'DELETE', 'PUT', 'PATCH'],
      url: path,
      handler: async (_request, reply) => rpcError(reply.code(405).header('allow', 'POST'), REFUSED, 'Method not allowed: this MCP endpoint is stateless; send requests with POST'),
    });

    scope.post(path, async (request, reply) => {
      const refusal = await authenticationRefusal(authenticate, request.headers.authorization);
      if (refusal) return rpcError(reply.code(401).header('www-authenticate', refusal.challenge), REFUSED, refusal.message);

      const server = mcpServer(graphQLCaller(app, request, graphqlPath), request.log);
      const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      // Sent, or the client gone: either way the server ends, and with it any tool call still under way.
      reply.raw.once('close', () => void server.close());
      await server.connect(transport);
      const response = await transport.handleRequest(webRequest(request), { parsedBody: request.body });
      reply.code(response.status);
      response.headers.forEach((value, name) => void reply.header(name, value));
      return reply.send(response.body ? Readable.fromWeb(response.body as NodeReadableStream) : undefined);
    });
  });
}

/** The tools a caller has: the fixed ones, and its tenant's published workflows as it sees them. */
function mcpServer(graphql: GraphQLCaller, log: FastifyBaseLogger): Server {
  const server = new Server(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    try {
      return { tools: [...[...FIXED_TOOLS.values()].map((fixed) => fixed.definition), ...(await workflowTools(graphql))] };
    } catch (error) {
      if (error instanceof ToolFailure) throw new McpError(RpcCode.InternalError, error.message);
      throw error;
    }
  });

  server.setRequestHandler(CallToolRequestSchema, async ({ params }, extra) => {
    const fixed = FIXED_TOOLS.get(params.name);
    if (!fixed && !params.name.startsWith(WORKFLOW_TOOL_PREFIX)) throw new McpError(RpcCode.InvalidParams, `there is no tool named ${params.name}`);
    try {
      if (fixed) return await fixed.call(params.arguments, { graphql, signal: extra.signal });
      return await startWorkflow(params.name, params.arguments ?? {}, graphql);
    } catch (error) {
      if (error instanceof ToolFailure) return error.result;
      // The client left: nobody reads the answer.
      if (extra.signal.aborted) throw new McpError(RpcCode.ConnectionClosed, 'the request was cancelled');
      // Whatever else went wrong stays in the log; the client learns only that it did.
      log.error({ err: error, tool: params.name }, 'an MCP tool failed');
      return { isError: true, content: [{ type: 'text', text: 'INTERNAL_SERVER_ERROR: the tool failed' }] };
    }
  });

  return server;
}

/** Why the caller may not use MCP, as a 401 states it; undefined when it may. */
async function authenticationRefusal(authenticate: McpOptions['authenticate'], authorization: string | undefined) {
  // Anonymous callers have no tools: every one acts as somebody.
  if (!authorization) return { challenge: 'Bearer', message: 'UNAUTHENTICATED: send Authorization: Bearer <access token or API key>' };
  try {
    await authenticate(authorization);
    return undefined;
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== ErrorCode.UNAUTHENTICATED) throw error;
    return { challenge: 'Bearer error="invalid_token"', message: `UNAUTHENTICATED: ${error.message}` };
  }
}

/** The request as the SDK's web-standard transport reads it; its body, parsed already, is handed over apart. */
function webRequest(request: FastifyRequest): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || name === 'content-length' || name === 'host' || name === 'connection' || name === 'transfer-encoding') continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return new Request(new URL(request.url, 'http://gateway'), { method: request.method, headers });
}

function rpcError(reply: FastifyReply, code: number, message: string) {
  return reply.type('application/json; charset=utf-8').send({ jsonrpc: '2.0', error: { code, message }, id: null });
}

/** A body that is not JSON, too large or of another type: its 4xx with a JSON-RPC error, never a 500. */
function requestErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
  if (status >= 500) request.log.error({ err: error }, 'MCP request failed');
  const code = status >= 500 ? RpcCode.InternalError : status === 400 ? RpcCode.ParseError : RpcCode.InvalidRequest;
  return rpcError(reply.code(status), code, status >= 500 ? 'Internal server error' : error.message);
}
