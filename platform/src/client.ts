import { DEV_LOGIN_GRANT } from './contracts/principal.ts';
import { injectTraceHeaders } from './telemetry.ts';

/** A minimal GraphQL-over-HTTP client for scripts and tests: POST, JSON, errors surfaced as exceptions. */
export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

export function postGraphQL<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: GraphQLResponse<T> }> {
  return postGraphQLRequest<T>(url, { query, variables }, headers);
}

/** POSTs any GraphQL request body (a persisted document's `documentId`, say) as JSON. */
export async function postGraphQLRequest<T = Record<string, unknown>>(
  url: string,
  request: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: GraphQLResponse<T> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...injectTraceHeaders({}), ...headers },
    body: JSON.stringify(request),
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse<T> };
}

/** Like postGraphQL, but returns `data` and throws when the response carries errors. */
export async function graphql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<T> {
  return dataOf(await postGraphQL<T>(url, query, variables, headers));
}

/** A response's `data`; throws when it carries errors. */
export function dataOf<T>({ status, body }: { status: number; body: GraphQLResponse<T> }): T {
  if (body.errors?.length || !body.data) {
    throw new Error(`GraphQL request failed (${status}): ${JSON.stringify(body.errors)}`);
  }
  return body.data;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** POSTs a form to an OAuth2 token endpoint; the parsed answer and its status, errors included. */
export async function requestToken(tokenUrl: string, form: Record<string, string>) {
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return {
    status: response.status,
    cacheControl: response.headers.get('cache-control'),
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** An access token for a tenant member through the dev-login grant (the issuer must have AUTH_DEV_LOGIN on). */
export async function devLogin(tokenUrl: string, tenantSlug: string, email: string): Promise<string> {
  const { status, body } = await requestToken(tokenUrl, { grant_type: DEV_LOGIN_GRANT, tenant: tenantSlug, email });
  if (status !== 200) throw new Error(`sign-in failed (${status}): ${JSON.stringify(body)}`);
  return body.access_token as string;
}
