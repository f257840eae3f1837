import { ApolloGateway, RemoteGraphQLDataSource, type GraphQLDataSource } from '@apollo/gateway';
import { Kind, type DocumentNode } from 'graphql';
import { PRINCIPAL_HEADER } from '@jarvis/platform/contracts';
import type { Logger } from '@jarvis/platform/logger';
import { injectTraceHeaders } from '@jarvis/platform/telemetry';
import type { OperationContext } from './subscriptions/websocket.ts';

/**
 * Where each subgraph of a supergraph is served: its `@join__graph` URL, unless configuration names another.
 * Read before the gateway starts, so everything that calls a subgraph (planning, readiness, metering) is wired
 * with its address from the beginning.
 */
export function subgraphLocations(supergraph: DocumentNode, overrides: Record<string, string>): Map<string, string> {
  const locations = new Map<string, string>();
  for (const definition of supergraph.definitions) {
    if (definition.kind !== Kind.ENUM_TYPE_DEFINITION || definition.name.value !== 'join__Graph') continue;
    for (const value of definition.values ?? []) {
      const graph = value.directives?.find((d) => d.name.value === 'join__graph');
      const argument = (name: string) => graph?.arguments?.find((a) => a.name.value === name)?.value;
      const [name, url] = [argument('name'), argument('url')];
      if (name?.kind !== Kind.STRING) continue;
      const location = overrides[name.value] ?? (url?.kind === Kind.STRING ? url.value : '');
      if (location) locations.set(name.value, location);
    }
  }
  return locations;
}

/**
 * @apollo/gateway over the supergraph, calling each subgraph at its location through `fetcherFor`, with the
 * caller's principal signed (once per request, on the first subgraph fetch) and the trace carried.
 */
export function federatedGateway({ supergraphSdl, locations, fetcherFor, log }: {
  supergraphSdl: string;
  locations: Map<string, string>;
  fetcherFor: (name: string) => RemoteGraphQLDataSource['fetcher'];
  log: Logger;
}) {
  const dataSources: Record<string, GraphQLDataSource> = {};
  const gateway = new ApolloGateway({
    supergraphSdl,
    logger: log,
    buildService: ({ name, url }) =>
      (dataSources[name] = new RemoteGraphQLDataSource<OperationContext>({
        url: locations.get(name) ?? url,
        fetcher: fetcherFor(name),
        willSendRequest: async ({ request, context }) => {
          const headers = request.http?.headers;
          headers?.set(PRINCIPAL_HEADER, await context.principalToken());
          for (const [header, value] of Object.entries(injectTraceHeaders({}))) headers?.set(header, value);
        },
      })),
  });
  return { gateway, dataSources };
}
