import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { AppError, ErrorCode, errorBody } from '@jarvis/platform/errors';
import { observeErrors } from '@jarvis/platform/http';
import type { DocumentRequest } from './persisted-documents.ts';

type ResolveDocument = (request: DocumentRequest) => string | undefined;

/**
 * Serves an Apollo Server at `path` on Fastify, GET and POST, per the GraphQL-over-HTTP specification.
 * Apollo Server does the negotiation (application/graphql-response+json vs application/json) and the
 * status codes; requests that are not well-formed HTTP for GraphQL get a GraphQL-shaped error body.
 */
export function serveGraphQL<Context extends BaseContext>(
  app: FastifyInstance,
  server: ApolloServer<Context>,
  path: string,
  /** The request's context; it may refuse the request with an AppError, or add response headers. */
  contextFor: (request: FastifyRequest, reply: FastifyReply) => Promise<Context>,
  {
    readBody = async (request) => request.body,
    resolveDocument,
  }: {
    /** The GraphQL request in the body, read once the caller is known (an upload's files, say). */
    readBody?: (request: FastifyRequest) => Promise<unknown>;
    /** The document a request stands for, where it may name a trusted one by hash instead of sending its text. */
    resolveDocument?: ResolveDocument;
  } = {},
) {
  app.setErrorHandler(requestErrorHandler);
  methodNotAllowed(app, path);
  app.route({
    method: ['GET', 'POST'],
    url: path,
    handler: async (request, reply) => {
      let context: Context;
      let graphQLRequest: { search: string; body: unknown };
      try {
        context = await contextFor(request, reply);
        graphQLRequest = withDocument({ search: new URL(request.url, 'http://gateway').search, body: await readBody(request) }, resolveDocument);
      } catch (error) {
        if (error instanceof AppError && REFUSALS[error.code]) return refuse(reply, error);
        throw error;
      }
      const response = await server.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: request.method.toUpperCase(), headers: jsonHeaders(request), ...graphQLRequest },
        context: async () => context,
      });
      for (const [name, value] of response.headers) reply.header(name, value);
      if (response.body.kind === 'chunked') {
        reply.code(response.status ?? 200);
        return Readable.from(response.body.asyncIterator);
      }
      reply.code(legacyJsonStatus(response.status ?? 200, response.headers.get('content-type'), response.body.string));
      return response.body.string;
    },
  });
}

/** Requests refused before any GraphQL work: who the caller is, or how much it has asked of late. */
const REFUSALS: Partial<Record<string, (reply: FastifyReply, error: AppError) => FastifyReply>> = {
  [ErrorCode.UNAUTHENTICATED]: (reply) => reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"'),
  [ErrorCode.RATE_LIMITED]: (reply, error) => reply.code(429).header('retry-after', String(error.extensions.retryAfter)),
  [ErrorCode.QUOTA_EXCEEDED]: (reply, error) => reply.code(429).header('retry-after', String(error.extensions.retryAfter)),
  [ErrorCode.PERSISTED_QUERY_NOT_IN_LIST]: (reply) => reply.code(400),
  [ErrorCode.QUERY_NOT_IN_SAFELIST]: (reply) => reply.code(400),
  [ErrorCode.BAD_USER_INPUT]: (reply) => reply.code(400),
};

/**
 * The request with the document it names by hash written out, from the body (POST) or the query string (GET),
 * and without `documentId`, which Apollo Server does not know.
 */
function withDocument(request: { search: string; body: unknown }, resolveDocument: ResolveDocument | undefined) {
  if (!resolveDocument) return request;
  const { body } = request;
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const { documentId: _named, ...rest } = body as Record<string, unknown>;
    const query = resolveDocument(body);
    return { search: request.search, body: query === undefined ? rest : { ...rest, query } };
  }
  const params = new URLSearchParams(request.search);
  const query = resolveDocument({ query: params.get('query') ?? undefined, documentId: params.get('documentId') ?? undefined, extensions: jsonParam(params.get('extensions')) });
  params.delete('documentId');
  if (query !== undefined) params.set('query', query);
  return { search: `?${params}`, body };
}

function jsonParam(value: string | null): unknown {
  if (value === null) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    throw new AppError(ErrorCode.BAD_USER_INPUT, 'the extensions parameter is not JSON');
  }
}

function refuse(reply: FastifyReply, error: AppError) {
  observeErrors(reply.request, [error.code]);
  const body = { errors: [{ message: error.message, extensions: error.extensions }] };
  return REFUSALS[error.code]!(reply, error).type('application/json; charset=utf-8').send(body);
}

/** Errors in a well-formed request: the document does not parse or validate, or variables do not coerce. */
const REQUEST_ERRORS = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT']);

/**
 * Apollo Server answers 400 to a request whose document fails to parse or validate. That is right for
 * application/graphql-response+json, but the spec asks for 200 when the client accepted only
 * application/json, since legacy clients treat any 4xx as a transport failure.
 */
function legacyJsonStatus(status: number, contentType: string | undefined, body: string): number {
  if (status !== 400 || !contentType?.startsWith('application/json')) return status;
  const { errors } = JSON.parse(body) as { errors?: { extensions?: { code?: string } }[] };
  const allRequestErrors = errors?.length && errors.every((e) => REQUEST_ERRORS.has(e.extensions?.code ?? ''));
  return allRequestErrors ? 200 : status;
}

/** Any other method on the GraphQL path: 405 with the methods that work. */
function methodNotAllowed(app: FastifyInstance, path: string) {
  app.route({
    method: ['PUT', 'PATCH', 'DELETE'],
    url: path,
    handler: async (_request, reply) =>
      reply
        .code(405)
        .header('allow', 'GET, POST')
        .send(errorBody('GraphQL is served over GET and POST', 'METHOD_NOT_ALLOWED')),
  });
}

/** The request's headers for Apollo Server; a multipart upload reaches it as the JSON request it carries. */
function jsonHeaders(request: FastifyRequest): HeaderMap {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  if (request.isMultipart?.()) headers.set('content-type', 'application/json');
  return headers;
}

const REQUEST_ERROR_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/** Malformed JSON, an unsupported Content-Type, an oversized body: 4xx with a GraphQL error, never a 500. */
function requestErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  const message = status >= 500 ? 'Internal server error' : error.message;
  const code = REQUEST_ERROR_CODES[status] ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST');
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send(errorBody(message, code));
}
