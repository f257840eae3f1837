/**
 * GraphQL over WebSocket (graphql-ws, `graphql-transport-ws`) on the gateway's GraphQL path. The caller
 * authenticates in `connection_init` (`authorization: "Bearer …"`, as the HTTP header would carry it); a
 * refused credential closes the socket with 4403. Every operation then passes the gateway's pipeline as an
 * HTTP request does, stage by stage: admission, the document, parsing and validation (shared with Apollo
 * Server, so done once), the operation policies. Subscriptions run federated (federated.ts) after the
 * operation policies decide here; queries and mutations run through Apollo Server, whose gateway applies them.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { ApolloServer } from '@apollo/server';
import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Principal } from '@jarvis/platform/contracts';
import { AppError, ErrorCode } from '@jarvis/platform/errors';
import type { RequestObservation } from '@jarvis/platform/http';
import type { Logger } from '@jarvis/platform/logger';
import { mapStream, onStreamEnd } from '@jarvis/platform/streams';
import type { GatewayMetrics } from '../metrics.ts';
import { unresolvedOperation } from '../gateway-wrapper.ts';
import type { Decision, GatewayPipeline } from '../pipeline/pipeline.ts';
import type { federatedSubscriptions } from './federated.ts';

/** The context every operation gets, as HTTP requests get it. */
export interface OperationContext {
  principal: Principal;
  ip: string;
  principalToken: () => Promise<string>;
  /** The HTTP request's metrics and span, for an operation over HTTP. */
  observation?: RequestObservation | null;
}

export interface WebSocketOptions {
  path: string;
  log: Logger;
  authenticate: (authorization: string | undefined) => Promise<Principal>;
  /** The gateway's policies, as HTTP requests pass them. */
  pipeline: GatewayPipeline;
  contextFor: (principal: Principal, ip: string) => OperationContext;
  /** The API schema operations are validated against. */
  schema: () => GraphQLSchema;
  federated: ReturnType<typeof federatedSubscriptions>;
  apollo: ApolloServer<OperationContext>;
  metrics: Pick<GatewayMetrics, 'websocketConnections' | 'activeSubscriptions'>;
  /** The client's address, as HTTP requests' limits count it (past trusted proxies). */
  addressOf: (request: IncomingMessage) => string;
  /** The largest message taken, in bytes: the bound HTTP bodies have. */
  maxMessageBytes: number;
  /** Sockets one address may hold open while not signed in to a tenant (before connection_init, or anonymous). */
  anonymousConnectionsPerIp: number;
  /** Error messages as clients see them (suggestions left out in production). */
  formatMessage: (message: string) => string;
}

/** A socket that has not sent connection_init by then is closed (4408). */
const CONNECTION_INIT_TIMEOUT_MS = 3_000;

interface Connection {
  principal: Principal;
}

type Extra = { socket: WebSocket; request: IncomingMessage } & Partial<Connection>;

/** Serves graphql-ws on `server`'s upgrades to `path`; the returned close ends every socket with 1001. */
export function serveWebSocket(server: Server, options: WebSocketOptions): { close(): Promise<void> } {
  const { addressOf } = options;
  const anonymous = anonymousSockets(options.anonymousConnectionsPerIp);
  const wss = new WebSocketServer({
    server,
    path: options.path,
    maxPayload: options.maxMessageBytes,
    verifyClient: ({ req }, admit) => (anonymous.full(addressOf(req)) ? admit(false, 429, 'Too many connections without credentials') : admit(true)),
  });
  wss.on('connection', (socket, request) => anonymous.opened(socket, addressOf(request)));
  const disposable = useServer<Record<string, unknown>, Extra>(
    {
      schema: () => options.schema(),
      connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
      async onConnect(ctx) {
        const authorization = ctx.connectionParams?.authorization;
        try {
          ctx.extra.principal = await options.authenticate(typeof authorization === 'string' ? authorization : undefined);
          if (ctx.extra.principal.tenantId) anonymous.signedIn(ctx.extra.socket);
          options.metrics.websocketConnections.inc();
          return true;
        } catch (error) {
          options.log.info({ reason: (error as Error).message }, 'refused a WebSocket connection');
          return false;
        }
      },
      onDisconnect() {
        options.metrics.websocketConnections.dec();
      },
      async onSubscribe(ctx, _id, payload) {
        const principal = ctx.extra.principal!;
        try {
          return withMessages(await prepare(options, principal, addressOf(ctx.extra.request), payload), options.formatMessage);
        } catch (error) {
          // graphql-ws closes the socket (4500) on anything thrown: the operation fails, the socket stays.
          options.log.error({ err: error }, 'preparing a WebSocket operation failed');
          return [new GraphQLError('Internal server error', { extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } })];
        }
      },
      // Results reach graphql-ws as GraphQLErrors or, from Apollo Server, already formatted: both are sent as JSON.
      onNext: (_ctx, _id, _payload, _args, result) => ({ ...result, ...(result.errors && { errors: result.errors.map(toJSON) }) }),
      subscribe: (args) => run(options, args),
      execute: (args) => runOnApollo(options.apollo, args),
    },
    wss,
  );
  return {
    async close() {
      await disposable.dispose();
    },
  };
}

/** What a prepared operation carries to its execution: its context, and the text or the pipeline's decision. */
type Prepared = { context: OperationContext } & ({ query: string } | { decision: Extract<Decision, { run: unknown }> });

async function prepare(options: WebSocketOptions, principal: Principal, ip: string, payload: SubscribePayload): Promise<ExecutionArgs | readonly GraphQLError[]> {
  const { pipeline } = options;
  try {
    await pipeline.admit({ principal, ip });
  } catch (error) {
    if (error instanceof AppError) return [new GraphQLError(error.message, { extensions: error.extensions })];
    throw error;
  }
  let query: string | undefined;
  try {
    query = pipeline.resolveDocument(payload);
  } catch (error) {
    if (error instanceof GraphQLError) return [error];
    throw error;
  }
  if (query === undefined) return [new GraphQLError('send the document, or the hash of a trusted one', { extensions: { code: 'BAD_USER_INPUT' } })];
  const prepared = pipeline.prepare(query);
  if ('errors' in prepared) return prepared.errors;
  const { document, queryHash } = prepared;
  const schema = options.schema();
  const operation = getOperationAST(document, payload.operationName);
  if (!operation) return [new GraphQLError(unresolvedOperation(payload.operationName), { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })];
  const variables = payload.variables ?? {};
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables);
  if (coerced.errors) return coerced.errors;
  const context = options.contextFor(principal, ip);
  const args = { schema, document, operationName: payload.operationName, variableValues: variables };
  // Apollo Server applies the operation policies to queries and mutations, as over HTTP.
  if (operation.operation !== 'subscription') return { ...args, contextValue: { context, query } satisfies Prepared };

  const decision = await pipeline.decide({ schema, document, operation, operationName: payload.operationName, queryHash, variables, principal, ip });
  if ('refused' in decision) return decision.refused.errors ?? [];
  return { ...args, contextValue: { context, decision } satisfies Prepared };
}

function run(options: WebSocketOptions, args: ExecutionArgs): AsyncIterableIterator<ExecutionResult> {
  const { context, decision } = args.contextValue as Extract<Prepared, { decision: unknown }>;
  const { run: operation, complete } = decision;
  const events = options.federated.subscribe({
    document: operation.document,
    queryHash: operation.queryHash,
    operationName: args.operationName,
    variables: operation.variables,
    principal: context.principal,
    context,
  });
  options.metrics.activeSubscriptions.inc();
  const counted = onStreamEnd(events, () => options.metrics.activeSubscriptions.dec());
  return complete ? mapStream(counted, async (result) => complete(result)) : counted;
}

async function runOnApollo(apollo: ApolloServer<OperationContext>, args: ExecutionArgs): Promise<ExecutionResult> {
  const { context, query } = args.contextValue as Extract<Prepared, { query: string }>;
  // The text, not the document: Apollo Server finds it, parsed and validated, in the pipeline's documentStore.
  const response = await apollo.executeOperation(
    { query, operationName: args.operationName ?? undefined, variables: (args.variableValues ?? {}) as Record<string, unknown> },
    { contextValue: context },
  );
  if (response.body.kind === 'single') return response.body.singleResult as ExecutionResult;
  return { errors: [new GraphQLError('@defer and @stream are not served over WebSocket', { extensions: { code: ErrorCode.BAD_USER_INPUT } })] };
}

/** An error as JSON, whether graphql-js made it or Apollo Server formatted it already. */
function toJSON(error: GraphQLError | GraphQLFormattedError): GraphQLFormattedError {
  return error instanceof GraphQLError ? error.toJSON() : error;
}

/** Errors refusing an operation, with messages as clients see them; execution arguments as they are. */
function withMessages(prepared: ExecutionArgs | readonly GraphQLError[], format: (message: string) => string) {
  if (!Array.isArray(prepared)) return prepared as ExecutionArgs;
  return (prepared as readonly GraphQLError[]).map((error) => {
    error.message = format(error.message);
    return error;
  });
}

/**
 * Sockets of each address not signed in to a tenant — waiting for connection_init, or anonymous — counted so
 * that one address cannot hold more than `max` of them open.
 */
function anonymousSockets(max: number) {
  const perAddress = new Map<string, number>();
  const addressOfSocket = new WeakMap<WebSocket, string>();
  const release = (socket: WebSocket) => {
    const address = addressOfSocket.get(socket);
    if (address === undefined) return;
    addressOfSocket.delete(socket);
    const left = (perAddress.get(address) ?? 1) - 1;
    if (left > 0) perAddress.set(address, left);
    else perAddress.delete(address);
  };
  return {
    full: (address: string) => (perAddress.get(address) ?? 0) >= max,
    opened(socket: WebSocket, address: string) {
      addressOfSocket.set(socket, address);
      perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
      socket.once('close', () => release(socket));
    },
    signedIn: release,
  };
}
