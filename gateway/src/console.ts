/**
 * The web console (web/, built to web/dist by Vite) from the gateway's own origin, so it reaches `/graphql`
 * (HTTP and WebSocket) without CORS; sign-in's `/oauth/token` is passed on to tenancy for the same reason.
 * GraphiQL (`/graphiql`, bundled with the console, no CDN) is served in development only.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { AppError, ErrorCode } from '@jarvis/platform/errors';

export interface ConsoleOptions {
  /** The built console; nothing is served when it does not exist (run `npm run build -w web`). */
  distDir: string;
  graphiql: boolean;
  /** Tells the console to send documents by hash only. */
  trustedDocuments: boolean;
  /** Tenancy's OAuth2 token endpoint. */
  tokenUrl: string | undefined;
  /** The request rate of the address a token request comes from: throws RATE_LIMITED when used up. */
  admitAddress: (ip: string) => Promise<unknown>;
}

export async function serveConsole(app: FastifyInstance, options: ConsoleOptions): Promise<boolean> {
  if (options.tokenUrl) passTokenRequests(app, options.tokenUrl, options.admitAddress);
  const index = join(options.distDir, 'index.html');
  if (!existsSync(index)) return false;
  // The console learns the gateway's settings from the page itself. Read per request: a rebuild renames assets.
  const settings = `<script>window.__JARVIS__=${JSON.stringify({ trustedDocuments: options.trustedDocuments })}</script>`;
  const page = () => readFileSync(index, 'utf8').replace('</head>', `${settings}</head>`);
  await app.register(fastifyStatic, {
    root: options.distDir,
    index: false,
    wildcard: true,
    // The console's own page carries its settings; GraphiQL's only where it is on.
    allowedPath: (path) => path !== '/index.html' && (options.graphiql || path !== '/graphiql.html'),
  });
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page()));
  if (options.graphiql) app.get('/graphiql', async (_request, reply) => reply.sendFile('graphiql.html'));
  return true;
}

/** The headers of a token request that tenancy reads, and of its answer that the client needs. */
const TOKEN_REQUEST_HEADERS = ['content-type', 'authorization'];
const TOKEN_RESPONSE_HEADERS = ['content-type', 'cache-control', 'www-authenticate'];
/** Far above any token request; tenancy applies its own, tighter limits. */
const TOKEN_REQUEST_LIMIT = 256 * 1024;

/**
 * `POST /oauth/token` as tenancy answers it: the body passed on byte for byte, whatever its type, with the
 * headers tenancy reads. Tenancy judges the request; the gateway only refuses what it cannot pass on.
 */
function passTokenRequests(app: FastifyInstance, tokenUrl: string, admitAddress: ConsoleOptions['admitAddress']): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    // Only reading the request can fail here: the exchange with tenancy answers for itself.
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      request.log.debug({ err: error }, 'a token request could not be read');
      const tooLarge = error.statusCode === 413;
      return refuseTokenRequest(reply, tooLarge ? `the request is larger than ${TOKEN_REQUEST_LIMIT} bytes` : 'the request could not be read');
    });
    scope.post('/oauth/token', { bodyLimit: TOKEN_REQUEST_LIMIT }, async (request, reply) => {
      // Nobody is signed in yet: the anonymous rate of the address applies.
      const refused = await admitAddress(request.ip).then(() => undefined, (error: unknown) => error);
      if (refused instanceof AppError && refused.code === ErrorCode.RATE_LIMITED) {
        const retryAfter = String(refused.extensions.retryAfter);
        const slowDown = { error: 'temporarily_unavailable', error_description: `too many requests from this address; try again in ${retryAfter} s` };
        return reply.code(429).header('retry-after', retryAfter).header('cache-control', 'no-store').send(slowDown);
      }
      if (refused) throw refused;
      const headers = TOKEN_REQUEST_HEADERS.flatMap((name) => {
        const value = request.headers[name];
        return typeof value === 'string' ? [[name, value] as [string, string]] : [];
      });
      let response: Response;
      let answer: Buffer;
      try {
        response = await fetch(tokenUrl, { method: 'POST', headers, body: request.body instanceof Buffer ? request.body : undefined });
        answer = Buffer.from(await response.arrayBuffer());
      } catch (error) {
        request.log.warn({ err: error }, 'the token endpoint could not be reached');
        const unreachable = { error: 'temporarily_unavailable', error_description: 'the token endpoint could not be reached' };
        return reply.code(502).header('cache-control', 'no-store').send(unreachable);
      }
      reply.code(response.status).header('cache-control', 'no-store');
      for (const name of TOKEN_RESPONSE_HEADERS) {
        const value = response.headers.get(name);
        if (value !== null) reply.header(name, value);
      }
      return reply.send(answer);
    });
  });
}

/** RFC 6749 §5.2, for a request the gateway could not even read to pass on. */
function refuseTokenRequest(reply: FastifyReply, description: string) {
  return reply.code(400).header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: description });
}
