/**
 * The web console (web/, built to web/dist by Vite) from the gateway's own origin, so it reaches `/graphql`
 * (HTTP and WebSocket) without CORS; sign-in's `/oauth/token` is passed on to tenancy for the same reason.
 * GraphiQL (`/graphiql`, bundled with the console, no CDN) is served in development only.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '@jarvis/platform';

export interface ConsoleOptions {
  /** The built console; nothing is served when it does not exist (run `npm run build -w web`). */
  distDir: string;
  graphiql: boolean;
  /** Tells the console to send documents by hash only. */
  trustedDocuments: boolean;
  /** Tenancy's OAuth2 token endpoint. */
  tokenUrl: string | undefined;
}

export async function serveConsole(app: FastifyInstance, options: ConsoleOptions): Promise<boolean> {
  if (options.tokenUrl) passTokenRequests(app, options.tokenUrl);
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

/** `POST /oauth/token` as tenancy answers it: the form passed on as it came. */
function passTokenRequests(app: FastifyInstance, tokenUrl: string): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    scope.post('/oauth/token', async (request, reply) => {
      try {
        const response = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: String(request.body ?? '') });
        reply.code(response.status).header('cache-control', response.headers.get('cache-control') ?? 'no-store');
        return reply.type(response.headers.get('content-type') ?? 'application/json').send(await response.text());
      } catch (error) {
        request.log.warn({ err: error }, 'the token endpoint could not be reached');
        return reply.code(502).send(errorBody('the token endpoint could not be reached', 'BAD_GATEWAY'));
      }
    });
  });
}
