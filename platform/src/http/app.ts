import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../logger.ts';

/** A service listening: where, and how to stop it. */
export interface RunningService {
  name: string;
  url: string;
  close(): Promise<void>;
}

/** The largest request body a service takes unless it says otherwise: GraphQL requests are far smaller. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/**
 * A Fastify app with Jarvis's logger (per-request access logs off: they cost more than they tell) and a
 * graceful close: new requests are refused, in-flight ones finish, and each response sent while closing
 * ends its keep-alive connection — otherwise `close()` waits for clients' keep-alive timeouts.
 */
export function createHttpApp(
  log: Logger,
  { bodyLimit = DEFAULT_BODY_LIMIT, trustedProxies = [] }: { bodyLimit?: number | undefined; trustedProxies?: readonly string[] } = {},
): FastifyInstance {
  const app = Fastify({
    // request.ip: the address before these proxies, from X-Forwarded-For; without any, the socket's peer.
    trustProxy: trustedProxies.length ? [...trustedProxies] : false,
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    bodyLimit,
    // Starting mercurius builds the schema; on a loaded machine that outlasts Fastify's default 10 s.
    pluginTimeout: 60_000,
  });
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });
  return app;
}
