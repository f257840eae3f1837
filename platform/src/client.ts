/** A minimal GraphQL-over-HTTP client for scripts and tests: POST, JSON, errors surfaced as exceptions. */
export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

export async function postGraphQL<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: GraphQLResponse<T> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse<T> };
}

/** Like postGraphQL, but returns `data` and throws when the response carries errors. */
export async function graphql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<T> {
  const { status, body } = await postGraphQL<T>(url, query, variables);
  if (body.errors?.length || !body.data) {
    throw new Error(`GraphQL request failed (${status}): ${JSON.stringify(body.errors)}`);
  }
  return body.data;
}
