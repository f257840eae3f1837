import type { RemoteGraphQLDataSource } from '@apollo/gateway';
import { Agent, fetch } from 'undici';

type Fetcher = NonNullable<ConstructorParameters<typeof RemoteGraphQLDataSource>[0]>['fetcher'];

/**
 * One keep-alive connection pool shared by every subgraph fetch: @apollo/gateway's default fetcher opens
 * far more connections and pays for TLS/TCP set-up it does not need.
 */
export function createSubgraphFetcher(connectionsPerOrigin: number): { fetcher: NonNullable<Fetcher>; close(): Promise<void> } {
  const agent = new Agent({ connections: connectionsPerOrigin, keepAliveTimeout: 30_000, pipelining: 1 });
  const fetcher = ((url: string, init?: Parameters<typeof fetch>[1]) =>
    fetch(url, { ...init, dispatcher: agent })) as unknown as NonNullable<Fetcher>;
  return { fetcher, close: () => agent.close() };
}
