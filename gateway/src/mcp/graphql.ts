/**
 * MCP tools as GraphQL operations of the caller: each goes through the gateway's own GraphQL route in process
 * (Fastify's inject), with the caller's Authorization and address, so authentication, document limits, rate
 * limits, metering, authorization and tenant scoping apply to it exactly as to any GraphQL request, once each.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

export interface GraphQLErrorShape {
  message: string;
  path?: readonly (string | number)[];
  extensions?: { code?: unknown; retryAfter?: unknown };
}

export interface Fielded<T> {
  /** The root field's value: null only when the operation answered null without an error. */
  value: T | null;
  /** Errors beneath the root field (a nested field the caller may not read, say). */
  errors: GraphQLErrorShape[];
}

export interface GraphQLCaller {
  /** The root field `root` of the operation; throws a ToolFailure when errors kept it from being answered. */
  field<T>(query: string, variables: Record<string, unknown>, root: string): Promise<Fielded<T>>;
}

/** What a tool answers when it could not do its work: the result as the client gets it. */
export class ToolFailure extends Error {
  readonly result: CallToolResult;
  readonly codes: string[];

  constructor(errors: readonly GraphQLErrorShape[]) {
    const text = errors.map(describeError).join('\n');
    super(text);
    this.codes = errors.map(codeOf);
    this.result = { isError: true, content: [{ type: 'text', text }] };
  }
}

/** Request headers an operation carries over from the MCP request: who the caller is, and the trace it is part of. */
const CARRIED_HEADERS = ['authorization', 'traceparent', 'tracestate'];

export function graphQLCaller(app: FastifyInstance, request: FastifyRequest, graphqlPath: string): GraphQLCaller {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
  };
  for (const name of CARRIED_HEADERS) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return {
    async field<T>(query: string, variables: Record<string, unknown>, root: string): Promise<Fielded<T>> {
      // The caller's own address, so per-address limits count the MCP client and not the gateway itself.
      const response = await app
        .inject({ method: 'POST', url: graphqlPath, headers, payload: JSON.stringify({ query, variables }), remoteAddress: request.ip })
        .catch((error: { code?: string }) => {
          // Fastify takes no new requests once closing, injected ones included.
          if (error.code !== 'FST_ERR_REOPENED_CLOSE_SERVER') throw error;
          throw new ToolFailure([{ message: 'the gateway is shutting down; try again', extensions: { code: 'UNAVAILABLE' } }]);
        });
      const body = parsed(response.body, response.statusCode);
      const value = (body.data?.[root] ?? null) as T | null;
      const errors = body.errors ?? [];
      const failed = errors.filter((error) => !error.path || error.path.length <= 1);
      if (failed.length > 0 || (value === null && errors.length > 0)) throw new ToolFailure(failed.length > 0 ? failed : errors);
      return { value, errors };
    },
  };
}

/** A tool's answer: the value as JSON text (for any client) and as structured content; notes after it. */
export function succeeded(value: Record<string, unknown>, { notes = [], errors = [] }: { notes?: string[]; errors?: readonly GraphQLErrorShape[] } = {}): CallToolResult {
  const partial = errors.length > 0 ? [`Partly answered: ${errors.map(describeError).join('; ')}`] : [];
  return {
    content: [{ type: 'text', text: JSON.stringify(value, null, 2) }, ...[...notes, ...partial].map((text) => ({ type: 'text' as const, text }))],
    structuredContent: value,
  };
}

/** `CODE: message`, with when to retry for a rate or quota refusal. */
export function describeError(error: GraphQLErrorShape): string {
  const retryAfter = error.extensions?.retryAfter;
  const path = error.path && error.path.length > 1 ? ` (at ${error.path.join('.')})` : '';
  return `${codeOf(error)}: ${error.message}${path}${retryAfter !== undefined ? ` (retryAfter: ${String(retryAfter)} s)` : ''}`;
}

const codeOf = (error: GraphQLErrorShape) => (typeof error.extensions?.code === 'string' ? error.extensions.code : 'INTERNAL_SERVER_ERROR');

function parsed(text: string, status: number): { data?: Record<string, unknown> | null; errors?: GraphQLErrorShape[] } {
  try {
    const body = JSON.parse(text) as { data?: Record<string, unknown> | null; errors?: GraphQLErrorShape[] };
    if (body && typeof body === 'object') return body;
  } catch {
    // Not a GraphQL response: answered below from the status alone.
  }
  return { errors: [{ message: `the gateway answered HTTP ${status}`, extensions: { code: status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST' } }] };
}
