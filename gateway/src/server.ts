import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { createHttpApp, createLogger, registerHealth, SUPERGRAPH_PATH, type Config, type Logger, type RunningService } from '@jarvis/platform';
import { serveGraphQL } from './http.ts';
import { createSubgraphFetcher } from './subgraph-fetcher.ts';

/**
 * The public entry: any supergraph file (ours by default) executed by @apollo/gateway behind Apollo
 * Server, with subgraph URLs overridable by configuration.
 */
export async function createGatewayServer(config: Config, log: Logger = createLogger('gateway', config.LOG_LEVEL)) {
  const supergraphSdl = readFileSync(config.SUPERGRAPH_PATH ?? SUPERGRAPH_PATH, 'utf8');
  const subgraphs = createSubgraphFetcher(config.SUBGRAPH_CONNECTIONS);
  const gateway = new ApolloGateway({
    supergraphSdl,
    logger: log,
    buildService: ({ name, url }) =>
      new RemoteGraphQLDataSource({ url: config.SUBGRAPH_URLS[name] ?? url, fetcher: subgraphs.fetcher }),
  });
  const apollo = new ApolloServer({
    gateway,
    logger: log,
    includeStacktraceInErrorResponses: false,
    // Jarvis authenticates with bearer tokens and API keys, never ambient cookies, so CSRF prevention would
    // only break spec-conformant GET requests.
    csrfPrevention: false,
  });
  await apollo.start();

  const app = createHttpApp(log);
  serveGraphQL(app, apollo, '/graphql');
  registerHealth(app, async () => {});

  async function close() {
    await app.close();
    await apollo.stop();
    await subgraphs.close();
  }

  return {
    app,
    async start(port = config.GATEWAY_PORT): Promise<RunningService> {
      const address = await app.listen({ port, host: config.HOST });
      const url = `${address}/graphql`;
      log.info({ url }, 'gateway listening');
      return { name: 'gateway', url, close };
    },
  };
}
