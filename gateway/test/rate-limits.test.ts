/**
 * `@rateLimit` through the real gateway: kept in the supergraph by @composeDirective, enforced per root field
 * and per key before planning, exact under concurrency — across two gateway replicas sharing Redis when
 * REDIS_URL is set (CI), in one gateway's memory otherwise.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { parse } from 'graphql';
import { createGatewayServer } from '@jarvis/gateway';
import { postGraphQL } from '@jarvis/platform/client';
import { loadConfig } from '@jarvis/platform/config';
import type { RunningService } from '@jarvis/platform/http';
import { RATE_LIMIT_SDL, redisVariants, serveSupergraph, testIssuer, type TestIssuer } from '@jarvis/platform/testing';
import { readRateLimits } from '../src/rate-limits.ts';

const SDL = `${RATE_LIMIT_SDL}
  type Query {
    open: String
    hundred: String @rateLimit(max: 100, window: "1h", by: IP)
    few: String @rateLimit(max: 2, window: "1h")
    tenantWide: String @rateLimit(max: 3, window: "1h", by: TENANT)
  }
  type Mutation { send: String @rateLimit(max: 1, window: "1h", by: IP) }
`;

const RESOLVERS = { Query: { open: () => 'open', hundred: () => 'ok', few: () => 'ok', tenantWide: () => 'ok' }, Mutation: { send: () => 'sent' } };

const ISSUER = 'https://issuer.limits.test';
const AUDIENCE = 'jarvis-api';
/** Limits in one gateway's memory; with Redis, shared by two gateway replicas. */
const DEPLOYMENT = { memory: 'memory, one gateway', redis: 'Redis, two gateways' };

let supergraph: Awaited<ReturnType<typeof serveSupergraph>>;
let issuer: TestIssuer;

before(async () => {
  supergraph = await serveSupergraph([{ name: 'limited', sdl: SDL, resolvers: RESOLVERS }]);
  issuer = await testIssuer({ issuer: ISSUER, audience: AUDIENCE, kid: 'k' });
});
after(async () => {
  await supergraph?.close();
  await issuer?.close();
});

const tokenFor = (tenantId: string, userId = randomUUID()) => issuer.sign({ tid: tenantId }, { subject: userId, expiresIn: '10m' });

test('@rateLimit survives composition with its arguments', () => {
  const limits = readRateLimits(parse(supergraph.supergraphSdl));
  assert.deepEqual([...limits.values()].map((l) => [l.coordinate, l.max, l.windowMs, l.by]).sort(), [
    ['Mutation.send', 1, 3_600_000, 'IP'],
    ['Query.few', 2, 3_600_000, 'PRINCIPAL'],
    ['Query.hundred', 100, 3_600_000, 'IP'],
    ['Query.tenantWide', 3, 3_600_000, 'TENANT'],
  ]);
});

for (const variant of redisVariants()) {
  describe(`@rateLimit at the gateway, ${DEPLOYMENT[variant.name]}`, { skip: variant.skip }, () => {
    const gateways: RunningService[] = [];
    before(async () => {
      const config = loadConfig({
        LOG_LEVEL: 'silent',
        SUPERGRAPH_PATH: supergraph.supergraphPath,
        SUBGRAPH_URLS: supergraph.subgraphUrls,
        INTERNAL_AUTH_SECRET: 'a-secret-this-test-subgraph-simply-ignores',
        // Field limits are under test here, not the rate of anonymous callers.
        ANONYMOUS_REQUESTS_PER_SECOND: '100000',
        ANONYMOUS_BURST: '100000',
        ...issuer.env,
        ...(variant.url ? { REDIS_URL: variant.url, REDIS_KEY_PREFIX: `test:${randomUUID()}:` } : {}),
      });
      for (let i = 0; i < (variant.url ? 2 : 1); i++) gateways.push(await (await createGatewayServer(config)).start(0));
    });
    after(() => Promise.all(gateways.map((g) => g.close())));

    test('1,000 concurrent requests against a limit of 100 admit exactly 100; the rest get 429 with Retry-After', async () => {
      // 200 sockets, kept alive: a thousand at once overflow the listen backlog of a busy machine (ECONNRESET).
      const client = new Agent({ connections: 200 });
      const answers = await Promise.all(
        Array.from({ length: 1000 }, async (_, i) => {
          const response = await fetch(gateways[i % gateways.length]!.url, {
            dispatcher: client,
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
            body: JSON.stringify({ query: '{ hundred }' }),
          });
          const body = (await response.json()) as { data?: { hundred: string | null } | null; errors?: { extensions?: { code?: string; retryAfter?: number } }[] };
          return { status: response.status, retryAfter: response.headers.get('retry-after'), body };
        }),
      );
      await client.close();
      const admitted = answers.filter((a) => a.body.data?.hundred === 'ok');
      assert.equal(admitted.length, 100);
      const refused = answers.filter((a) => a.status === 429);
      assert.equal(refused.length, 900);
      for (const answer of refused) {
        assert.equal(answer.body.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
        assert.ok(Number(answer.retryAfter) >= 1 && answer.body.errors?.[0]?.extensions?.retryAfter === Number(answer.retryAfter));
      }
    });

    test('a limited field is refused on its own: the rest of the request answers', async () => {
      const headers = { authorization: `Bearer ${await tokenFor(randomUUID())}` };
      for (let i = 0; i < 2; i++) assert.deepEqual((await postGraphQL(gateways[0]!.url, '{ few }', {}, headers)).body.data, { few: 'ok' });
      const { status, body } = await postGraphQL(gateways.at(-1)!.url, '{ open few }', {}, headers);
      assert.equal(status, 200);
      assert.deepEqual(body.data, { open: 'open', few: null });
      assert.deepEqual(body.errors?.map((e) => [e.path, e.extensions?.code]), [[['few'], 'RATE_LIMITED']]);
      assert.ok((body.errors?.[0]?.extensions?.retryAfter as number) > 0);
    });

    test('each key counts on its own: per user, per tenant', async () => {
      const tenant = randomUUID();
      const ada = { authorization: `Bearer ${await tokenFor(tenant)}` };
      const bob = { authorization: `Bearer ${await tokenFor(tenant)}` };
      const stranger = { authorization: `Bearer ${await tokenFor(randomUUID())}` };
      const ask = async (query: string, headers: Record<string, string>) => (await postGraphQL(gateways[0]!.url, query, {}, headers)).body.data;
      for (let i = 0; i < 2; i++) await ask('{ few }', ada);
      assert.deepEqual(await ask('{ few }', ada), null, 'ada has used hers');
      assert.deepEqual(await ask('{ few }', bob), { few: 'ok' }, "bob's count is his own");

      for (let i = 0; i < 3; i++) assert.deepEqual(await ask('{ tenantWide }', i % 2 ? ada : bob), { tenantWide: 'ok' });
      assert.deepEqual(await ask('{ tenantWide }', bob), null, 'the tenant has used its three');
      assert.deepEqual(await ask('{ tenantWide }', stranger), { tenantWide: 'ok' }, 'another tenant has its own');
    });

    test('aliases do not multiply the allowance: each occurrence counts', async () => {
      const { body } = await postGraphQL(gateways[0]!.url, 'mutation { a: send b: send }');
      assert.deepEqual(body.data, { a: 'sent', b: null });
      assert.deepEqual(body.errors?.map((e) => e.path), [['b']]);
    });

    test('fragments do not dodge a limit: inline, named, nested, aliased, skipped — each executed key counts', async () => {
      const headers = { authorization: `Bearer ${await tokenFor(randomUUID())}` };
      const ask = (query: string, variables: Record<string, unknown> = {}) => postGraphQL(gateways[0]!.url, query, variables, headers);
      // `few` allows two calls: one through an inline fragment, one through a named fragment nested in another.
      assert.deepEqual((await ask('{ ... on Query { few } }')).body.data, { few: 'ok' });
      const named = await ask('query { ...Outer } fragment Outer on Query { ... { ...Inner } } fragment Inner on Query { few }');
      assert.deepEqual(named.body.data, { few: 'ok' });
      // A skipped field does not execute and does not count; the limit is used up now whichever way it is asked.
      assert.deepEqual((await ask('query($no: Boolean!) { open ... @include(if: $no) { few } }', { no: false })).body, { data: { open: 'open' } });
      for (const query of ['{ few }', '{ ... on Query { x: few } }', '{ ...F } fragment F on Query { few }', '{ ... { ... { ... { few } } } }']) {
        const { status, body } = await ask(query);
        assert.equal(status, 429, `${query}: ${JSON.stringify(body)}`);
        assert.equal(body.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
      }
      // The rest of the operation still runs, and a fragment shared with a field elsewhere keeps that field.
      const mixed = await ask('{ open ...F } fragment F on Query { few open }');
      assert.deepEqual(mixed.body.data, { open: 'open', few: null });
      assert.deepEqual(mixed.body.errors?.map((e) => [e.path, e.extensions?.code]), [[['few'], 'RATE_LIMITED']]);
    });

    test('aliases inside fragments each count', async () => {
      // The previous test spent this address's one `send`; every alias in every fragment is refused.
      const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: send`);
      const query = `mutation { ... on Mutation { ${aliases.slice(0, 10).join(' ')} } ...M } fragment M on Mutation { ${aliases.slice(10).join(' ')} }`;
      const { status, body } = await postGraphQL(gateways[0]!.url, query);
      assert.equal(status, 429);
      assert.equal(body.data, null);
      assert.equal(body.errors?.length, 20);
      assert.ok(body.errors?.every((e) => e.extensions?.code === 'RATE_LIMITED'));
    });
  });
}
