import type { RemoteGraphQLDataSource } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import { PRINCIPAL_HEADER } from '@jarvis/platform/contracts';
import { Agent, fetch, Response, type RequestInit } from 'undici';
import type { GatewayMetrics } from './metrics.ts';

type Fetcher = NonNullable<NonNullable<ConstructorParameters<typeof RemoteGraphQLDataSource>[0]>['fetcher']>;

/** A subgraph's answer, read once and shared: each waiter gets a Response of its own made from it. */
interface Answer {
  status: number;
  headers: [string, string][];
  body: string;
}

/** Describe the body as it was sent; the answer handed on is already decoded, and of another length. */
const PASSED_ON = (name: string) => name !== 'content-encoding' && name !== 'content-length';

/**
 * One keep-alive connection pool shared by every subgraph fetch: @apollo/gateway's default fetcher opens
 * far more connections and pays for TLS/TCP set-up it does not need. Each subgraph's fetcher times its fetches.
 * With `deduplicate`, a query fetch identical to one in flight — same subgraph, same body, same caller — waits
 * for that one's answer instead of asking again; mutations always go through.
 */
export function createSubgraphFetcher(
  connectionsPerOrigin: number,
  fetchSeconds: GatewayMetrics['subgraphFetch'],
  { deduplicate = true } = {},
): { fetcherFor(subgraph: string): Fetcher; close(): Promise<void> } {
  const agent = new Agent({ connections: connectionsPerOrigin, keepAliveTimeout: 30_000, pipelining: 1 });
  const inFlight = new Map<string, Promise<Answer>>();

  function timedFetch(subgraph: string, url: string, init: RequestInit | undefined): Promise<Answer> {
    const stop = fetchSeconds.startTimer({ subgraph });
    return fetch(url, { ...init, dispatcher: agent })
      .then(async (response): Promise<Answer> => {
        if (UNAVAILABLE_STATUSES.has(response.status)) throw unavailable(subgraph, `it answered ${response.status}`);
        return { status: response.status, headers: [...response.headers].filter(([name]) => PASSED_ON(name)), body: await response.text() };
      })
      .then(
        (answer) => {
          stop({ outcome: answer.status >= 200 && answer.status < 300 ? 'success' : 'error' });
          return answer;
        },
        (error: unknown) => {
          stop({ outcome: 'error' });
          throw error instanceof GraphQLError ? error : unavailable(subgraph, (error as Error).message);
        },
      );
  }

  function shared(subgraph: string, url: string, init: RequestInit | undefined): Promise<Answer> {
    const key = deduplicate ? queryKey(url, init) : undefined;
    if (key === undefined) return timedFetch(subgraph, url, init);
    let answer = inFlight.get(key);
    if (!answer) {
      answer = timedFetch(subgraph, url, init).finally(() => inFlight.delete(key));
      inFlight.set(key, answer);
    }
    return answer;
  }

  return {
    fetcherFor(subgraph) {
      return (async (url: string, init?: RequestInit) => {
        const { status, headers, body } = await shared(subgraph, url, init);
        return new Response(body, { status, headers });
      }) as unknown as Fetcher;
    },
    close: () => agent.close(),
  };
}

/** What a proxy or load balancer in front of a subgraph answers when nothing behind it can take the request. */
const UNAVAILABLE_STATUSES = new Set([502, 503, 504]);

/**
 * A subgraph that cannot be reached is named as such: not an internal error of the gateway, but a part of the
 * platform that is down or starting. The cause stays in the gateway's log.
 */
function unavailable(subgraph: string, cause: string): GraphQLError {
  return new GraphQLError(`the ${subgraph} subgraph is unavailable`, {
    extensions: { code: 'SUBGRAPH_UNAVAILABLE', serviceName: subgraph },
    originalError: new Error(cause),
  });
}

/**
 * What makes two fetches the same question: the URL, the body, and the caller (the signed principal's claims
 * without its timestamps, which differ between requests of one caller). Undefined for anything but a query.
 */
function queryKey(url: string, init: RequestInit | undefined): string | undefined {
  const body = init?.body;
  if (typeof body !== 'string' || !isQuery(body)) return undefined;
  const token = new Headers(init?.headers as HeadersInit | undefined).get(PRINCIPAL_HEADER);
  const claims = token?.split('.')[1];
  if (!claims) return undefined;
  const { principal } = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as { principal?: unknown };
  return `${url}\u0000${JSON.stringify(principal)}\u0000${body}`;
}

/**
 * @apollo/gateway's RemoteGraphQLDataSource serialises `query` first, and a subgraph operation starts with its
 * keyword, or `{` for a query: the body's first characters say, without parsing a body that may be large. Any
 * other shape counts as not a query, so it is never shared.
 */
const QUERY_BODY = /^\{"query":"(query\b|\{)/;
const isQuery = (body: string) => QUERY_BODY.test(body);
