/**
 * One explicit adapter for a service calling another subgraph's GraphQL endpoint on behalf of its caller, as
 * the gateway's RemoteGraphQLDataSource is for the gateway: the caller's principal signed with the
 * deployment's secret (so the other subgraph applies the caller's own access rules), the trace carried on, a
 * deadline, and failures as typed errors with a stable code. Where the other subgraph lives is configuration
 * (SUBGRAPH_URLS), never a guess.
 */
import { ConfigError, type Config } from './config/environment.ts';
import { PRINCIPAL_HEADER, type Principal, type PrincipalSigner } from './contracts/principal.ts';
import type { SubgraphName } from './config/services.ts';
import { injectTraceHeaders } from './telemetry.ts';

/** A request to another subgraph that did not give an answer: its error's code, or why there was none. */
export class SubgraphRequestError extends Error {
  override name = 'SubgraphRequestError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface SubgraphClient {
  /** `data` of the operation asked as `principal`; a SubgraphRequestError when it answered errors or nothing. */
  request<T>(principal: Principal, document: string, variables: Record<string, unknown>): Promise<T>;
}

export function subgraphClient({ name, url, signer, timeoutMs = 10_000 }: { name: SubgraphName; url: string; signer: PrincipalSigner; timeoutMs?: number }): SubgraphClient {
  return {
    async request<T>(principal: Principal, document: string, variables: Record<string, unknown>): Promise<T> {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json',
          ...injectTraceHeaders({}),
          [PRINCIPAL_HEADER]: await signer.sign(principal),
        },
        body: JSON.stringify({ query: document, variables }),
        signal: AbortSignal.timeout(timeoutMs),
      }).catch((error: Error) => {
        throw new SubgraphRequestError(`the ${name} subgraph could not be reached: ${error.message}`, 'SUBGRAPH_UNAVAILABLE');
      });
      const body = (await response.json().catch(() => ({}))) as { data?: T | null; errors?: { message: string; extensions?: { code?: unknown } }[] };
      const [first] = body.errors ?? [];
      if (first || !body.data) {
        throw new SubgraphRequestError(first?.message ?? `the ${name} subgraph answered ${response.status}`, String(first?.extensions?.code ?? 'SUBGRAPH_UNAVAILABLE'));
      }
      return body.data;
    },
  };
}

/** Where a subgraph is, from SUBGRAPH_URLS; a service that needs one and is not told refuses to start. */
export function subgraphUrl(config: Config, name: SubgraphName): string {
  const url = config.SUBGRAPH_URLS[name];
  if (!url) throw new ConfigError(`SUBGRAPH_URLS must name the ${name} subgraph (${name}=http://…/graphql)`);
  return url;
}
