import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'graphql';
import { ApolloGateway, RemoteGraphQLDataSource, type GraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import {
  ANONYMOUS,
  createHttpApp,
  createLogger,
  DEFAULT_BODY_LIMIT,
  createServiceMetrics,
  injectTraceHeaders,
  observeGraphQLRequests,
  openLimitStore,
  registerMetricsRoute,
  internalAuthSecret,
  PRINCIPAL_HEADER,
  principalSigner,
  registerHealth,
  SUPERGRAPH_PATH,
  trustedIssuer,
  type Config,
  type Logger,
  type Principal,
  type RunningService,
} from '@jarvis/platform';
import { createAuthenticator } from './authentication.ts';
import { authorizedSchema, authorizingGateway, readAuthorization } from './authorization/index.ts';
import { planLimiter } from './plan-limits.ts';
import { rateLimitingGateway, readRateLimits } from './rate-limits.ts';
import { requestMeter } from './metering/meter.ts';
import { serveGraphQL } from './http.ts';
import { acceptUploads, graphQLBody } from './uploads.ts';
import { documentLimits } from './limits.ts';
import { createSubgraphFetcher } from './subgraph-fetcher.ts';
import { requireOperation } from './gateway-wrapper.ts';
import { clientMessages } from './disclosure.ts';
import { subgraphsReady } from './readiness.ts';
import { clientAddress } from './client-address.ts';
import { createGatewayMetrics } from './metrics.ts';
import { observationPlugin } from './observation.ts';
import { serveConsole } from './console.ts';
import { loadPersistedDocuments } from './persisted-documents.ts';
import { federatedSubscriptions } from './subscriptions/federated.ts';
import { upstreamSubscriptions } from './subscriptions/upstream.ts';
import { serveWebSocket, type OperationContext } from './subscriptions/websocket.ts';

/** The console's build, and the manifest of the documents it sends (codegen writes it). */
const CONSOLE_DIST = fileURLToPath(new URL('../../web/dist/', import.meta.url));
const CONSOLE_DOCUMENTS = fileURLToPath(new URL('../../web/src/gql/persisted-documents.json', import.meta.url));

/** Per request: the caller, and the principal signed once — on the first subgraph fetch — for all of them. */
type GatewayContext = OperationContext;

/**
 * The public entry: any supergraph file (ours by default) executed by @apollo/gateway behind Apollo
 * Server, with subgraph URLs overridable by configuration.
 */
export async function createGatewayServer(config: Config, log: Logger = createLogger('gateway', config.LOG_LEVEL)) {
  const signer = principalSigner(internalAuthSecret(config));
  const supergraphSdl = readFileSync(config.SUPERGRAPH_PATH ?? SUPERGRAPH_PATH, 'utf8');
  const document = parse(supergraphSdl);
  const { rules, gatewaySdl } = readAuthorization(supergraphSdl, document);
  // Read before the gateway starts: a misplaced @rateLimit stops start-up instead of going unenforced.
  const rateLimits = readRateLimits(document);
  const limits = openLimitStore({
    redisUrl: config.REDIS_URL,
    prefix: `${config.REDIS_KEY_PREFIX}limits:`,
    failureMode: config.LIMITS_FAILURE_MODE,
    log,
  });
  const metrics = createServiceMetrics('gateway');
  const gatewayMetrics = createGatewayMetrics(metrics.registry);
  const subgraphs = createSubgraphFetcher(config.SUBGRAPH_CONNECTIONS, gatewayMetrics.subgraphFetch, { deduplicate: config.SUBGRAPH_DEDUPLICATION });
  const subgraphUrls = new Map<string, string>();
  const dataSources: Record<string, GraphQLDataSource> = {};
  const gateway = new ApolloGateway({
    supergraphSdl: gatewaySdl,
    logger: log,
    buildService: ({ name, url }) => {
      const resolved = config.SUBGRAPH_URLS[name] ?? url;
      if (resolved) subgraphUrls.set(name, resolved);
      return (dataSources[name] = new RemoteGraphQLDataSource<GatewayContext>({
        url: resolved,
        fetcher: subgraphs.fetcherFor(name),
        willSendRequest: async ({ request, context }) => {
          const headers = request.http?.headers;
          headers?.set(PRINCIPAL_HEADER, await context.principalToken());
          for (const [header, value] of Object.entries(injectTraceHeaders({}))) headers?.set(header, value);
        },
      }));
    },
  });
  const documents = loadPersistedDocuments(config.PERSISTED_DOCUMENTS_PATH ?? CONSOLE_DOCUMENTS, config.TRUSTED_DOCUMENTS_ONLY);
  const limitsOnDocuments = documentLimits(config);
  const schema = authorizedSchema(gateway, rules, { rejectUnauthorized: config.AUTHZ_REJECT_UNAUTHORIZED });
  const formatMessage = clientMessages(config.NODE_ENV === 'production');
  const apollo = new ApolloServer<GatewayContext>({
    // Authorization first, so fields a caller may not see never count against its limits.
    gateway: requireOperation(authorizingGateway(rateLimitingGateway(gateway, limits, rateLimits), schema)),
    logger: log,
    ...limitsOnDocuments,
    includeStacktraceInErrorResponses: false,
    formatError: (formatted) => ({ ...formatted, message: formatMessage(formatted.message) }),
    // Jarvis authenticates with bearer tokens and API keys, never ambient cookies, so CSRF prevention would
    // only break spec-conformant GET requests.
    csrfPrevention: false,
    plugins: [observationPlugin()],
  });
  await apollo.start();

  const app = createHttpApp(log, { trustedProxies: config.TRUSTED_PROXIES });
  // A request refused with 429 before any GraphQL work hit its plan's rate; RATE_LIMITED inside a result, a field's @rateLimit.
  observeGraphQLRequests(app, '/graphql', metrics, (code, status) => (status === 429 ? 'plan_rate' : code === 'RATE_LIMITED' ? 'field_rate' : 'quota'));
  await acceptUploads(app, { maxFileBytes: config.UPLOAD_MAX_BYTES, maxFiles: 10 });
  const issuer = trustedIssuer(config);
  // With no issuer configured, callers are anonymous and any bearer token is refused as untrusted.
  const authenticate = createAuthenticator(issuer ? [issuer] : [], {
    tokenExchangeUrl: config.TOKEN_EXCHANGE_URL,
    tokenExchangeCacheMs: config.TOKEN_EXCHANGE_CACHE_SECONDS * 1000,
    operatorToken: config.OPERATOR_TOKEN,
  });
  const admit = planLimiter(limits, { perSecond: config.ANONYMOUS_REQUESTS_PER_SECOND, burst: config.ANONYMOUS_BURST });
  // Known once the gateway has built its subgraph services (apollo.start): absent from foreign supergraphs.
  const usageUrl = subgraphUrls.get('usage');
  const meter = usageUrl ? requestMeter({
        usageUrl,
        signer,
        flushMs: config.REQUEST_METER_FLUSH_MS,
        log,
        redis: config.REDIS_URL ? { url: config.REDIS_URL, prefix: config.REDIS_KEY_PREFIX } : undefined,
      }) : undefined;
  const contextFor = (principal: Principal, ip: string): GatewayContext => {
    let token: Promise<string> | undefined;
    return { principal, ip, principalToken: () => (token ??= signer.sign(principal)) };
  };
  serveGraphQL(app, apollo, '/graphql', async (request, reply) => {
    const principal = await authenticate(request.headers.authorization);
    const rateHeaders = await admit(principal, request.ip);
    if (rateHeaders) reply.headers(rateHeaders);
    await meter?.count(principal);
    return { ...contextFor(principal, request.ip), observation: request.observation };
  }, { readBody: graphQLBody, documents });
  registerHealth(app, subgraphsReady(subgraphUrls, signer));
  registerMetricsRoute(app, metrics.registry);
  const tenancyUrl = subgraphUrls.get('tenancy');
  await serveConsole(app, {
    distDir: CONSOLE_DIST,
    graphiql: config.NODE_ENV !== 'production',
    trustedDocuments: config.TRUSTED_DOCUMENTS_ONLY,
    tokenUrl: tenancyUrl && new URL('/oauth/token', tenancyUrl).href,
    admitAddress: (ip) => admit(ANONYMOUS, ip),
  });

  const upstream = upstreamSubscriptions({
    urlOf: (name) => subgraphUrls.get(name)?.replace(/^http/, 'ws'),
    sign: (principal) => signer.sign(principal),
    log,
  });
  const federated = federatedSubscriptions({ supergraphSdl: gatewaySdl, dataSources: () => dataSources, upstream, log });
  const websocket = serveWebSocket(app.server, {
    path: '/graphql',
    log,
    authenticate,
    admit,
    count: meter && ((principal) => meter.count(principal)),
    contextFor,
    ...limitsOnDocuments,
    schema,
    limits: { store: limits, rules: rateLimits },
    federated,
    apollo,
    metrics: gatewayMetrics,
    documents,
    maxMessageBytes: DEFAULT_BODY_LIMIT,
    addressOf: clientAddress(config.TRUSTED_PROXIES),
    anonymousConnectionsPerIp: config.WEBSOCKET_ANONYMOUS_CONNECTIONS_PER_IP,
    formatMessage,
  });

  /** New connections are refused at once; requests under way finish while subscriptions end with 1001. */
  async function close() {
    const httpClosed = app.close();
    await websocket.close();
    await httpClosed;
    await upstream.close();
    await meter?.close();
    await apollo.stop();
    await subgraphs.close();
    await limits.close();
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
