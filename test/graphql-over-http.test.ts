import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getIntrospectionQuery } from 'graphql';
import { serverAudits } from 'graphql-http';
import { databaseVariants } from '@jarvis/platform/testing';
import { startTestStack, type TestStack } from './helpers.ts';

describe('gateway speaks GraphQL over HTTP', () => {
  let stack: TestStack;
  before(async () => {
    // The protocol is under test here, not the rate of anonymous callers, which the audit would use up.
    stack = await startTestStack(databaseVariants()[0]!, { ANONYMOUS_REQUESTS_PER_SECOND: '100000', ANONYMOUS_BURST: '100000' });
  });
  after(() => stack?.close());

  test('passes every audit of the GraphQL-over-HTTP specification (graphql-http)', async () => {
    const failed: string[] = [];
    for (const audit of serverAudits({ url: stack.gatewayUrl })) {
      const result = await audit.fn();
      if (result.status !== 'ok') failed.push(`${audit.name}: ${result.reason}`);
    }
    assert.deepEqual(failed, []);
  });

  const GRAPHQL_RESPONSE = 'application/graphql-response+json';
  const cases: { name: string; init: () => [string, RequestInit]; status: number; code: string }[] = [
    {
      name: 'malformed JSON',
      init: () => [stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' }],
      status: 400,
      code: 'BAD_REQUEST',
    },
    {
      name: 'a document that does not parse',
      init: () => [stack.gatewayUrl, post({ query: '{ tenant { ' })],
      status: 400,
      code: 'GRAPHQL_PARSE_FAILED',
    },
    {
      name: 'an unknown field',
      init: () => [stack.gatewayUrl, post({ query: '{ tenant { nonsense } }' })],
      status: 400,
      code: 'GRAPHQL_VALIDATION_FAILED',
    },
    {
      name: 'variables of the wrong type',
      init: () => [stack.gatewayUrl, post({ query: 'query($first: Int) { tenant { conversations(first: $first) { id } } }', variables: { first: {} } })],
      status: 400,
      code: 'BAD_USER_INPUT',
    },
    {
      name: 'a wrong Content-Type',
      init: () => [stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<query/>' }],
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'a mutation over GET',
      init: () => [
        `${stack.gatewayUrl}?query=${encodeURIComponent('mutation { createTenant(input: {name: "x", slug: "x", owner: {email: "a@b.c", name: "a"}}) { tenant { id } } }')}`,
        { headers: { accept: GRAPHQL_RESPONSE } },
      ],
      status: 405,
      code: 'BAD_REQUEST',
    },
    {
      name: 'a selection 13 levels deep (limit 12)',
      init: () => [stack.gatewayUrl, post({ query: `{ ${'tenant { users { '.repeat(6)}id${' } }'.repeat(6)} }` })],
      status: 400,
      code: 'GRAPHQL_VALIDATION_FAILED',
    },
    {
      name: '31 aliases (limit 30)',
      init: () => [
        stack.gatewayUrl,
        post({ query: `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: permissions { name }`).join(' ')} }` }),
      ],
      status: 400,
      code: 'GRAPHQL_VALIDATION_FAILED',
    },
    {
      name: 'a document of more than 10,000 tokens',
      init: () => [stack.gatewayUrl, post({ query: `{ ${'__typename '.repeat(10_001)}}` })],
      status: 400,
      code: 'GRAPHQL_PARSE_FAILED',
    },
    {
      name: 'a PUT',
      init: () => [stack.gatewayUrl, { ...post({ query: '{ __typename }' }), method: 'PUT' }],
      status: 405,
      code: 'METHOD_NOT_ALLOWED',
    },
    {
      name: 'a body without a query',
      init: () => [stack.gatewayUrl, post({ variables: {} })],
      status: 400,
      code: 'BAD_REQUEST',
    },
  ];

  function post(body: object): RequestInit {
    return {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: GRAPHQL_RESPONSE },
      body: JSON.stringify(body),
    };
  }

  for (const { name, init, status, code } of cases) {
    test(`${name} gets ${status} and a GraphQL error with code ${code}`, async () => {
      const response = await fetch(...init());
      const body = (await response.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
      assert.equal(response.status, status, JSON.stringify(body));
      assert.equal(body.errors?.[0]?.extensions?.code, code, JSON.stringify(body));
      assert.ok(!JSON.stringify(body).includes('stacktrace'));
    });
  }

  test('a query over GET works and a legacy application/json client gets 200 for a validation error', async () => {
    const get = await fetch(`${stack.gatewayUrl}?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { accept: GRAPHQL_RESPONSE },
    });
    assert.equal(get.status, 200);
    assert.match(get.headers.get('content-type') ?? '', /application\/graphql-response\+json/);
    assert.deepEqual(await get.json(), { data: { __typename: 'Query' } });

    const legacy = await fetch(stack.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query: '{ nonsense }' }),
    });
    assert.equal(legacy.status, 200);
    assert.match(legacy.headers.get('content-type') ?? '', /^application\/json/);
  });

  test('the full introspection query is within the limits, so schema tooling works', async () => {
    const response = await fetch(stack.gatewayUrl, post({ query: getIntrospectionQuery() }));
    const body = (await response.json()) as { data?: { __schema?: { types: unknown[] } }; errors?: unknown };
    assert.equal(response.status, 200, JSON.stringify(body.errors));
    assert.ok((body.data?.__schema?.types.length ?? 0) > 10);
  });

  test('health endpoints answer on the gateway and every subgraph', async () => {
    const bases = [stack.gatewayUrl, ...Object.values(stack.subgraphUrls)].map((url) => url.replace(/\/graphql$/, ''));
    for (const base of bases) {
      for (const path of ['/healthz', '/readyz']) {
        const response = await fetch(base + path);
        assert.equal(response.status, 200, `${base}${path}`);
      }
    }
  });
});
