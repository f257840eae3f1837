/**
 * GraphiQL for the gateway's /graphql, bundled (no CDN), signed in as the console's current session when there
 * is one: queries and mutations over HTTP, subscriptions over graphql-ws, with `Authorization: Bearer <token>`
 * (a header set in GraphiQL's header editor wins).
 */
import { GraphiQL, type GraphiQLProps } from 'graphiql';
import 'graphiql/style.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient, type Client } from 'graphql-ws/client';
import { JarvisClient, GRAPHQL_PATH, graphqlSocketUrl } from './api/client';
import { currentSession, storeSession } from './api/session';

type Fetcher = GraphiQLProps['fetcher'];
type FetcherResult = Awaited<ReturnType<Fetcher>>;

const session = currentSession();
const jarvis = session ? new JarvisClient(session, (renewed) => storeSession(renewed)) : undefined;
const bearer = async () => (jarvis ? `Bearer ${await jarvis.accessToken()}` : undefined);

let ws: Client | undefined;
function socket(): Client {
  ws ??= createClient({
    url: graphqlSocketUrl(),
    lazy: true,
    retryAttempts: 3,
    connectionParams: async () => {
      const authorization = await bearer();
      return authorization ? { authorization } : {};
    },
  });
  return ws;
}

const isSubscription = (query: string, operationName?: string | null) => {
  const operations = [...query.matchAll(/(?:^|[\s}])(query|mutation|subscription)\s*([_A-Za-z][_0-9A-Za-z]*)?/g)];
  const chosen = operationName ? operations.find((m) => m[2] === operationName) : operations[0];
  return chosen?.[1] === 'subscription';
};

const fetcher: Fetcher = async (params, options) => {
  if (isSubscription(params.query, params.operationName)) {
    return socket().iterate({ query: params.query, operationName: params.operationName, variables: params.variables }) as unknown as FetcherResult;
  }
  const authorization = await bearer();
  const response = await fetch(GRAPHQL_PATH, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...(authorization ? { authorization } : {}),
      ...(options?.headers ?? {}),
    },
    body: JSON.stringify(params),
  });
  return (await response.json()) as FetcherResult;
};

const signedInAs = session ? `# Signed in to ${session.tenant} as ${session.email} (from the console).\n` : '# Not signed in: sign in on the console first.\n';

createRoot(document.getElementById('graphiql')!).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} defaultQuery={`${signedInAs}{\n  me { name email roles }\n  tenant { name slug plan }\n}\n`} />
  </StrictMode>,
);
