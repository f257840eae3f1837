import { fileURLToPath } from 'node:url';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { parse, type GraphQLError } from 'graphql';
import mercurius from 'mercurius';
import { openConfiguredBus, type Bus, type BusEvent } from '../bus/index.ts';
import { startOutboxRelay, type OutboxRelay } from '../outbox.ts';
import { internalAuthSecret, servicePort, type Config } from '../config/environment.ts';
import type { SubgraphName } from '../config/services.ts';
import { PRINCIPAL_HEADER, principalSigner, type Principal, type PrincipalSigner } from '../contracts/principal.ts';
import { openDatabase, scopeToPrincipal, type Database, type ModuleMigrations } from '../db/index.ts';
import { ErrorCode, errorBody, errorCodeOf, isSafeForClient, maskError } from '../errors.ts';
import { createHttpApp, type RunningService } from '../http/app.ts';
import { registerHealth, registerMetricsRoute } from '../http/health-and-metrics.ts';
import { observeErrors, observeGraphQLRequests } from '../http/request-observation.ts';
import { createLogger, type Logger } from '../logger.ts';
import { createServiceMetrics, type ServiceMetrics } from '../metrics.ts';
import { readSubgraphSdl } from '../schema.ts';
import { withFieldPolicies } from './field-policies.ts';

export interface BaseContext {
  db: Database;
  log: Logger;
  /** The caller, as the gateway signed it. */
  principal: Principal;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** What a subgraph's long-lived parts are opened with. */
export interface ResourceServices {
  db: Database;
  config: Config;
  log: Logger;
  /** Wakes the outbox relay right after a transaction that wrote events committed (see `outbox`). */
  outbox: { notify(): void };
  /** The service's Prometheus registry and GraphQL families; a subgraph adds families of its own to it. */
  metrics: ServiceMetrics;
}

export interface SubgraphDefinition<Context extends BaseContext, Resources extends object = object> {
  name: SubgraphName;
  /**
   * Resolver map in @apollo/subgraph's shape: `__resolveReference` for entities, a GraphQLScalarType per scalar.
   * The server guards each field by the @policy its SDL declares (servedSchema): resolvers need not check it.
   */
  resolvers: object;
  /** The subgraph's `migrations/` directory. */
  migrations: URL;
  /** Platform modules whose tables the subgraph keeps (QUOTA_OVERRIDES_MIGRATIONS): migrated before its own. */
  moduleMigrations?: readonly ModuleMigrations[];
  /**
   * Per-request additions to the context, such as dataloaders (fresh per request so nothing is cached across
   * callers). `unscoped` is the database before any confinement to the caller, for the few public operations
   * that act before a tenant is known (sign-up, accepting an invitation); everything else uses `base.db`.
   */
  context: (
    base: BaseContext,
    services: { unscoped: Database; config: Config; resources: Resources; outbox: ResourceServices['outbox'] },
  ) => Context;
  /**
   * Parts that requests and event handlers share for the server's lifetime (a vector store, an embedder, a
   * background sweep), opened once when the server is created and closed when it stops.
   */
  resources?: (services: ResourceServices) => Promise<Resources & { close(): Promise<void> }>;
  /** The subgraph writes events with `writeEvent`; its server relays them from the outbox to the bus. */
  outbox?: boolean;
  /** Some of its fields take an `Upload`: files the gateway inlines, so its requests may be that much larger. */
  acceptsUploads?: boolean;
  /**
   * The subgraph holds the tenant directory (tenancy): every tenant's rows stay in its shared schema, DEDICATED
   * ones included, so sign-in can find them. Other subgraphs put a DEDICATED tenant's data in its own schema.
   */
  tenantDirectory?: boolean;
  /**
   * Events the subgraph consumes: each handler runs for every event of its topic, at least once (a durable
   * subscription named `group`), so it must count an event id once. Handlers work on the unscoped database.
   */
  subscriptions?: EventSubscription<Resources>[];
  /** HTTP routes beside `/graphql` (no principal required), such as the token issuer's JWKS. */
  routes?: (app: FastifyInstance, services: { db: Database; config: Config; log: Logger; resources: Resources }) => void;
}

export interface EventSubscription<Resources extends object = object> {
  topic: string;
  group: string;
  handle: (event: BusEvent, services: { db: Database; log: Logger; resources: Resources }) => Promise<void>;
}

/** Identity function that fixes the context type; each subgraph's `server.ts` exports one definition. */
export function defineSubgraph<Context extends BaseContext, Resources extends object = object>(
  definition: SubgraphDefinition<Context, Resources>,
) {
  return definition;
}

/** A Fastify app serving one subgraph with mercurius, plus health endpoints; listen with `start`. */
/** The schema a subgraph serves: its SDL and resolvers, each field's @policy checked where it resolves (field-policies.ts). */
export function servedSchema(name: SubgraphName, resolvers: object) {
  const sdl = readSubgraphSdl(name);
  return buildSubgraphSchema([{ typeDefs: parse(sdl), resolvers: withFieldPolicies(sdl, resolvers) as GraphQLResolverMap }]);
}

export interface SubgraphServer {
  app: FastifyInstance;
  db: Database;
  start(port?: number): Promise<RunningService>;
}

export interface SubgraphServerOptions {
  log?: Logger;
  /** The bus the subgraph's subscriptions consume from; shared by the services of one process. */
  bus?: Bus;
}

export async function createSubgraphServer<Context extends BaseContext, Resources extends object>(
  definition: SubgraphDefinition<Context, Resources>,
  config: Config,
  { log = createLogger(definition.name, config.LOG_LEVEL), bus }: SubgraphServerOptions = {},
): Promise<SubgraphServer> {
  const signer = principalSigner(internalAuthSecret(config));
  const db = await openDatabase({
    service: definition.name,
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    schemaPrefix: config.DATABASE_SCHEMA_PREFIX,
    appRole: config.DATABASE_APP_ROLE,
    poolSize: config.DATABASE_POOL_SIZE,
  });
  let relay: OutboxRelay | undefined;
  const outbox = { notify: () => relay?.notify() };
  const metrics = createServiceMetrics(definition.name);
  let resources: Resources & { close(): Promise<void> };
  try {
    const applied = await db.migrate(fileURLToPath(definition.migrations), definition.moduleMigrations);
    if (applied.length) log.info({ applied, schema: db.schema }, 'migrations applied');
    resources = definition.resources
      ? await definition.resources({ db, config, log, outbox, metrics })
      : ({ close: async () => {} } as Resources & { close(): Promise<void> });
  } catch (error) {
    await db.close();
    throw error;
  }

  const schema = servedSchema(definition.name, definition.resolvers);

  const app = createHttpApp(log, { bodyLimit: definition.acceptsUploads ? uploadBodyLimit(config) : undefined });
  const subscriptions = Boolean(schema.getSubscriptionType());
  observeGraphQLRequests(app, '/graphql', metrics);
  requireSignedPrincipal(app, '/graphql', signer, { subscriptions });
  const contextOf = (principal: Principal) => {
    const scoped = scopeToPrincipal(db, principal, { dedicatedSchemas: !definition.tenantDirectory });
    return definition.context({ db: scoped, log, principal }, { unscoped: db, config, resources, outbox });
  };
  app.register(mercurius, {
    schema,
    path: '/graphql',
    graphiql: false,
    context: (request) => contextOf(request.principal),
    // graphql-ws: the gateway sends the signed principal in connection_init; without a valid one, no operation runs.
    subscription: subscriptions && {
      onConnect: async ({ payload }: { payload?: Record<string, unknown> }) => {
        const token = payload?.[PRINCIPAL_HEADER];
        return contextOf(await signer.verify(typeof token === 'string' ? token : undefined));
      },
    },
    errorFormatter: (execution, context) => {
      for (const error of execution.errors) {
        if (!isSafeForClient(error as GraphQLError)) log.error({ err: error.originalError, path: error.path }, 'resolver failed');
      }
      const errors = execution.errors.map((error) => maskError(error as GraphQLError));
      observeErrors((context as { reply?: FastifyReply } | undefined)?.reply?.request, errors.map(errorCodeOf));
      return mercurius.defaultErrorFormatter({ ...execution, errors }, context);
    },
  });
  registerHealth(app, () => db.ping());
  registerMetricsRoute(app, metrics.registry);
  definition.routes?.(app, { db, config, log, resources });

  return {
    app,
    db,
    async start(port = servicePort(config, definition.name)) {
      const address = await app.listen({ port, host: config.HOST });
      const url = `${address.replace('[::1]', 'localhost')}/graphql`;
      log.info({ url }, 'subgraph listening');
      const events = await connectEvents(definition, { db, log, config, bus, resources });
      relay = events.relay;
      return {
        name: definition.name,
        url,
        async close() {
          await app.close();
          await events.close();
          await resources.close();
          await db.close();
        },
      };
    },
  };
}

interface EventServices<Resources> {
  db: Database;
  log: Logger;
  config: Config;
  bus: Bus | undefined;
  resources: Resources;
}

/**
 * Subscribes the subgraph's handlers and starts its outbox relay, on the given bus or — when it needs one and
 * none was given — its own.
 */
async function connectEvents<Context extends BaseContext, Resources extends object>(
  definition: SubgraphDefinition<Context, Resources>,
  { db, log, config, bus, resources }: EventServices<Resources>,
) {
  const subscriptions = definition.subscriptions ?? [];
  const own = !bus && (subscriptions.length > 0 || definition.outbox) ? await openConfiguredBus(config, log) : undefined;
  const events = (bus ?? own)!;
  const active = await Promise.all(
    subscriptions.map(({ topic, group, handle }) => events.subscribe(topic, group, (event) => handle(event, { db, log, resources }))),
  );
  // After subscribing: the in-process bus keeps no queue for a group that has not subscribed yet.
  const relay = definition.outbox ? startOutboxRelay({ db, bus: events, log, pollMs: OUTBOX_POLL_MS }) : undefined;
  return {
    relay,
    async close() {
      await Promise.all(active.map((subscription) => subscription.close()));
      await relay?.stop();
      await own?.close();
    },
  };
}

/** A file of UPLOAD_MAX_BYTES inlined as base64 (4 characters per 3 bytes), and the rest of the request. */
function uploadBodyLimit(config: Config): number {
  return Math.ceil((config.UPLOAD_MAX_BYTES * 4) / 3) + 1024 * 1024;
}

/** How often the relay looks at the outbox when no producer woke it (another replica's writes, say). */
const OUTBOX_POLL_MS = 1_000;

/**
 * Only the gateway may call a subgraph's GraphQL endpoint: a request without a valid signed principal gets
 * 401 before any resolver runs, and a WebSocket without one in connection_init is closed. Health endpoints
 * stay open.
 */
function requireSignedPrincipal(app: FastifyInstance, path: string, signer: PrincipalSigner, { subscriptions }: { subscriptions: boolean }) {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url !== path) return;
    // A WebSocket proves itself in connection_init instead (see the subscription options). Node marks only a
    // request it handed to the WebSocket server as an upgrade, whatever headers a plain request carries.
    if (subscriptions && (request.raw as { upgrade?: boolean }).upgrade === true) return;
    const header = request.headers[PRINCIPAL_HEADER];
    try {
      request.principal = await signer.verify(typeof header === 'string' ? header : undefined);
    } catch (error) {
      request.log.warn({ reason: (error as Error).message, ip: request.ip }, 'refused a request without a valid principal');
      return reply.code(401).send(errorBody('Subgraphs answer only requests signed by the gateway', ErrorCode.UNAUTHENTICATED));
    }
  });
}
