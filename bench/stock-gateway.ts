/**
 * One stock gateway in a process of its own, for bench/gateway.ts: `tsx bench/stock-gateway.ts KIND`, KIND one of
 * `apollo` (@apollo/gateway behind Apollo Server's standalone node:http server), `hive` (Hive Gateway's runtime on
 * node:http) and `hive-no-dedup` (the same without deduplicating identical in-flight subgraph queries, which Hive
 * does by default: under a load of one query repeated, most of its subgraph fetches are shared). Each has its
 * default settings apart from what it takes to reach Jarvis's subgraphs:
 * - the supergraph (SUPERGRAPH_PATH, else the committed one) without the `for: SECURITY` link marker, cut by the
 *   Jarvis gateway's own readAuthorization (@apollo/gateway refuses the marker), and the subgraph URLs of
 *   SUBGRAPH_URLS (`name=url,…`) written into its @join__graph directives;
 * - on every subgraph request, the principal BENCH_PRINCIPAL (JSON) signed with INTERNAL_AUTH_SECRET, as the
 *   subgraphs demand. These gateways authenticate nobody, so the bench signs for its caller, again every 30 s
 *   (a signature lives 60 s).
 * It listens on a free port of 127.0.0.1 and sends `{ url }` to its parent once it serves.
 */
import { readFileSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';
import type { Transport } from '@graphql-mesh/transport-common';
import { buildHTTPExecutor } from '@graphql-tools/executor-http';
import { internalAuthSecret, loadConfig } from '@jarvis/platform/config';
import { PRINCIPAL_HEADER, principalSigner, type Principal } from '@jarvis/platform/contracts';
import { SUPERGRAPH_PATH } from '@jarvis/platform/schema';
import { readAuthorization } from '../gateway/src/authorization/index.ts';

const RESIGN_MS = 30_000;

/**
 * Hive Gateway loads its HTTP transport, @graphql-mesh/transport-http, on demand, and that package is not
 * installed here. This stands in for it with what it does for queries and mutations to a plain URL: the HTTP
 * executor of @graphql-tools/executor-http (which the runtime depends on) with the gateway's own fetch, so
 * onFetch hooks still apply.
 */
const HTTP_TRANSPORT: Transport = {
  getSubgraphExecutor: ({ transportEntry, fetch, getDisposeReason }) =>
    buildHTTPExecutor({ endpoint: transportEntry.location, ...transportEntry.options, getDisposeReason, fetch: fetch! }),
};

const kind = process.argv[2];
// SUPERGRAPH_PATH, SUBGRAPH_URLS and INTERNAL_AUTH_SECRET read as Jarvis's own services read them.
const config = loadConfig(process.env);
const sdl = supergraph(config.SUPERGRAPH_PATH ?? SUPERGRAPH_PATH, config.SUBGRAPH_URLS);
const principal = await signedPrincipal(internalAuthSecret(config), JSON.parse(process.env.BENCH_PRINCIPAL!) as Principal);
const url = kind === 'apollo' ? await apollo(sdl, principal) : kind?.startsWith('hive') ? await serve(hive(sdl, principal, kind !== 'hive-no-dedup')) : undefined;
if (!url) throw new Error(`usage: stock-gateway.ts apollo|hive|hive-no-dedup (got ${kind})`);
process.send!({ url });

/** The SDL @apollo/gateway accepts, pointed at the subgraphs' actual URLs. */
function supergraph(path: string, urls: Record<string, string>): string {
  return readAuthorization(readFileSync(path, 'utf8')).gatewaySdl.replace(
    /@join__graph\(name: "([^"]+)", url: "[^"]*"\)/g,
    (directive, name: string) => (Object.hasOwn(urls, name) ? `@join__graph(name: "${name}", url: "${urls[name]}")` : directive),
  );
}

/** The principal's signature now and, renewed in the background, from then on. */
async function signedPrincipal(secret: string, caller: Principal): Promise<() => string> {
  const signer = principalSigner(secret);
  let token = await signer.sign(caller);
  setInterval(async () => (token = await signer.sign(caller)), RESIGN_MS).unref();
  return () => token;
}

async function apollo(supergraphSdl: string, principal: () => string): Promise<string> {
  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource({
        url,
        willSendRequest: ({ request }) => void request.http?.headers.set(PRINCIPAL_HEADER, principal()),
      }),
  });
  const { url } = await startStandaloneServer(new ApolloServer({ gateway }), { listen: { host: '127.0.0.1', port: 0 } });
  return `${url}graphql`;
}

function hive(supergraphSdl: string, principal: () => string, deduplicate: boolean): RequestListener {
  return createGatewayRuntime({
    supergraph: supergraphSdl,
    logging: 'warn',
    transports: { http: HTTP_TRANSPORT },
    ...(deduplicate ? {} : { transportEntries: { '*.http': { options: { deduplicateInflightRequests: false } } } }),
    plugins: () => [
      {
        onFetch: ({ options, setOptions }) => setOptions({ ...options, headers: { ...options.headers, [PRINCIPAL_HEADER]: principal() } }),
      },
    ],
  });
}

async function serve(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}
