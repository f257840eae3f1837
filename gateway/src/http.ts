import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';

/**
 * Serves an Apollo Server at `path` on Fastify, GET and POST, per the GraphQL-over-HTTP specification.
 * Apollo Server does the negotiation (application/graphql-response+json vs application/json) and the
 * status codes; requests that are not well-formed HTTP for GraphQL get a GraphQL-shaped error body.
 */
export function serveGraphQL(app: FastifyInstance, server: ApolloServer<BaseContext>, path: string) {
  app.setErrorHandler(requestErrorHandler);
  app.route({
    method: ['GET', 'POST'],
    url: path,
    handler: async (request, reply) => {
      const response = await server.executeHTTPGraphQLRequest({
        httpGraphQLRequest: {
          method: request.method.toUpperCase(),
          headers: toHeaderMap(request),
          search: new URL(request.url, 'http://gateway').search,
          body: request.body,
        },
        context: async () => ({}),
      });
      reply.code(response.status ?? 200);
      for (const [name, value] of response.headers) reply.header(name, value);
      return response.body.kind === 'complete' ? response.body.string : Readable.from(response.body.asyncIterator);
    },
  });
}

function toHeaderMap(request: FastifyRequest): HeaderMap {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
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
    .send({ errors: [{ message, extensions: { code } }] });
}
