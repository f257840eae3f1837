import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'graphql';
import { ApolloServer } from '@apollo/server';
import { internalAuthSecret, trustedIssuer, type Config } from '@jarvis/platform/config';
import { ANONYMOUS, principalSigner, type Principal } from '@jarvis/platform/contracts';
import { createHttpApp, DEFAULT_BODY_LIMIT, observeGraphQLRequests, registerMetricsRoute, registerHealth, type RunningService } from '@jarvis/platform/http';
import { openLimitStore } from '@jarvis/platform/limits';
import { createLogger, type Logger } from '@jarvis/platform/logger';
import { createServiceMetrics } from '@jarvis/platform/metrics';
import { SUPERGRAPH_PATH } from '@jarvis/platform/schema';
import { createAuthenticator } from './authentication.ts';
import { authorizationPolicy, authorizedSchema, readAuthorization } from './authorization/index.ts';
import { planLimiter, planRatePolicy } from './plan-limits.ts';
import { fieldRateLimitPolicy, readRateLimits } from './rate-limits.ts';
import { meteringPolicy, requestMeter } from './metering/meter.ts';
import { serveGraphQL } from './http.ts';
import { acceptUploads, graphQLBody } from './uploads.ts';
import { documentLimits } from './limits.ts';
import { createSubgraphFetcher } from './subgraph-fetcher.ts';
import { federatedGateway, subgraphLocations } from './federation.ts';
import { requireOperation } from './gateway-wrapper.ts';
import { clientMessages } from './disclosure.ts';
import { subgraphsReady } from './readiness.ts';
import { clientAddress } from './client-address.ts';
import { createGatewayMetrics } from './metrics.ts';
import { observationPlugin } from './observation.ts';
import { serveConsole } from './console.ts';
import { loadPersistedDocuments, persistedDocumentsPolicy } from './persisted-documents.ts';
import { gatewayPipeline } from './pipeline/pipeline.ts';
import { pipelineGateway } from './pipeline/apollo.ts';
import { federatedSubscriptions } from './subscriptions/federated.ts';
import { upstreamSubscriptions } from './subscriptions/upstream.ts';
import { serveWebSocket, type OperationContext } from './subscriptions/websocket.ts';
import { serveMcp } from './mcp/route.ts';

/** The console's build, and the manifest of the documents it sends (codegen writes it). */
const CONSOLE_DIST = fileURLToPath(new URL('../../web/dist/', import.meta.url));
const CONSOLE_DOCUMENTS = fileURLToPath(new URL('../../web/src/gql/persisted-documents.json', import.meta.url));

/**
 * The public entry: any supergraph file (ours by default) executed by @apollo/gateway behind Apollo
 * Server, with subgraph URLs overridable by configuration. Every operation, over HTTP or WebSocket, passes the
 * same policies in the order listed here (pipeline/).
 */
export async function createGatewayServer(config: Config, log: Logger = createLogger('gateway', config.LOG_LEVEL)) {
  const signer = principalSigner(internalAuthSecret(config));
  const supergraphSdl = readFileSync(config.SUPERGRAPH_PATH ?? SUPERGRAPH_PATH, 'utf8');
  const document = parse(supergraphSdl);
  const { rules, gatewaySdl } = readAuthorization(supergraphSdl, document);
  // Read before the gateway starts: a misplaced @rateLimit stops start-up instead of going unenforced.
  const rateLimits = readRateLimits(document);
  const limits = openLimitStore({ redisUrl: config.REDIS_URL, prefix: `${config.REDIS_KEY_PREFIX}limits:`, failureMode: config.LIMITS_FAILURE_MODE, log });
  const metrics = createServiceMetrics('gateway');
  const gatewayMetrics = createGatewayMetrics(metrics.registry);
  const subgraphs = createSubgraphFetcher(config.SUBGRAPH_CONNECTIONS, gatewayMetrics.subgraphFetch, { deduplicate: config.SUBGRAPH_DEDUPLICATION });
  const locations = subgraphLocations(document, config.SUBGRAPH_URLS);
  const { gateway, dataSources } = federatedGateway({ supergraphSdl: gatewaySdl, locations, fetcherFor: subgraphs.fetcherFor, log });
  const schema = authorizedSchema(gateway, rules, { rejectUnauthorized: config.AUTHZ_REJECT_UNAUTHORIZED });
  const admit = planLimiter(limits, { perSecond: config.ANONYMOUS_REQUESTS_PER_SECOND, burst: config.ANONYMOUS_BURST });
  // Absent from foreign supergraphs, which have no usage subgraph to meter into.
  const usageUrl = locations.get('usage');
  const meter = usageUrl ? requestMeter({ usageUrl, signer, flushMs: config.REQUEST_METER_FLUSH_MS, log, redis: config.REDIS_URL ? { url: config.REDIS_URL, prefix: config.REDIS_KEY_PREFIX } : undefined }) : undefined;

  const pipeline = gatewayPipeline(
    [
      persistedDocumentsPolicy(loadPersistedDocuments(config.PERSISTED_DOCUMENTS_PATH ?? CONSOLE_DOCUMENTS, config.TRUSTED_DOCUMENTS_ONLY)),
      documentLimits(config),
      planRatePolicy(admit),
      // After the rate: a refused request is not metered.
      ...(meter ? [meteringPolicy(meter)] : []),
      // Authorization before field limits, so fields a caller may not see never count against its limits.
      authorizationPolicy(schema),
      fieldRateLimitPolicy(limits, rateLimits),
    ],
    () => schema().apiSchema,
    {
      step: (policy, { stage, outcome }) => gatewayMetrics.policySteps.inc({ policy, stage, outcome }),
      validated: () => gatewayMetrics.documentsValidated.inc(),
    },
  );

  const formatMessage = clientMessages(config.NODE_ENV === 'production');
  const apollo = new ApolloServer<OperationContext>({
    gateway: requireOperation(pipelineGateway(gateway, pipeline)),
    logger: log,
    parseOptions: pipeline.parseOptions,
    validationRules: pipeline.validationRules,
    documentStore: pipeline.documentStore,
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
  const contextFor = (principal: Principal, ip: string): OperationContext => {
    let token: Promise<string> | undefined;
    return { principal, ip, principalToken: () => (token ??= signer.sign(principal)) };
  };
  serveGraphQL(app, apollo, '/graphql', async (request, reply) => {
    const principal = await authenticate(request.headers.authorization);
    reply.headers(await pipeline.admit({ principal, ip: request.ip }));
    return { ...contextFor(principal, request.ip), observation: request.observation };
  }, { readBody: graphQLBody, resolveDocument: pipeline.resolveDocument });
  // MCP tools run as GraphQL operations through /graphql, so they pass the same pipeline, once each.
  serveMcp(app, { path: '/mcp', graphqlPath: '/graphql', authenticate });
  registerHealth(app, subgraphsReady(locations, signer));
  registerMetricsRoute(app, metrics.registry);
  const tenancyUrl = locations.get('tenancy');
  await serveConsole(app, {
    distDir: CONSOLE_DIST,
    graphiql: config.NODE_ENV !== 'production',
    trustedDocuments: config.TRUSTED_DOCUMENTS_ONLY,
    tokenUrl: tenancyUrl && new URL('/oauth/token', tenancyUrl).href,
    admitAddress: (ip) => admit(ANONYMOUS, ip),
  });

  const upstream = upstreamSubscriptions({ urlOf: (name) => locations.get(name)?.replace(/^http/, 'ws'), sign: (principal) => signer.sign(principal), log });
  const federated = federatedSubscriptions({ supergraphSdl: gatewaySdl, dataSources: () => dataSources, upstream, log });
  const websocket = serveWebSocket(app.server, {
    path: '/graphql',
    log,
    authenticate,
    pipeline,
    contextFor,
    schema: () => schema().apiSchema,
    federated,
    apollo,
    metrics: gatewayMetrics,
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
