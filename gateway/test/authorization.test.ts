import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { composeServices } from '@apollo/composition';
import { ApolloGateway } from '@apollo/gateway';
import { buildSubgraphSchema } from '@apollo/subgraph';
import Fastify, { type FastifyInstance } from 'fastify';
import { parse } from 'graphql';
import mercurius from 'mercurius';
import { createGatewayServer } from '@jarvis/gateway';
import { loadConfig } from '@jarvis/platform/config';
import type { RunningService } from '@jarvis/platform/http';
import { testIssuer, type TestIssuer } from '@jarvis/platform/testing';
import { readAuthorization } from '../src/authorization/index.ts';

const FEDERATION = '@link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key", "@authenticated", "@requiresScopes", "@policy"])';

const CATALOG_SDL = `
  extend schema ${FEDERATION}
  type Query {
    products: [Product!]!
    product(upc: ID!): Product
    me: User @authenticated
    vault: Vault
    search: [Result!]!
    accounts: [Account!]!
  }
  type Product @key(fields: "upc") {
    upc: ID!
    name: String!
    cost: Int @requiresScopes(scopes: [["catalog:read", "catalog:cost"], ["catalog:admin"]])
    margin: Float! @policy(policies: [["usage:read"]])
  }
  type User @key(fields: "id") { id: ID! name: String! }
  type Vault @authenticated { id: ID! secret: String }
  union Result = Product | Vault
  interface Account { id: ID! balance: Int }
  type Personal implements Account { id: ID! balance: Int @requiresScopes(scopes: [["ledger:read"]]) owner: String }
  type Business implements Account { id: ID! balance: Int }
`;

const REVIEWS_SDL = `
  extend schema ${FEDERATION}
  type Query { topReview: Review @policy(policies: [["kb:read", "chat:use"]]) }
  type Product @key(fields: "upc") { upc: ID! reviews: [Review!]! }
  type Review { body: String! author: String @authenticated }
`;

const PRODUCTS = [
  { upc: '1', name: 'Table', cost: 100, margin: 0.3 },
  { upc: '2', name: 'Couch', cost: 500, margin: 0.4 },
];
const REVIEWS: Record<string, { body: string; author: string }[]> = {
  '1': [
    { body: 'Sturdy', author: 'ada' },
    { body: 'Heavy', author: 'bob' },
  ],
  '2': [{ body: 'Comfy', author: 'cy' }],
};
const VAULT = { id: 'v1', secret: 'gold' };
const ACCOUNTS = [
  { id: 'p1', balance: 10, owner: 'ada' },
  { id: 'b1', balance: 99 },
];

const catalogResolvers = {
  Query: {
    products: () => PRODUCTS,
    product: (_: unknown, { upc }: { upc: string }) => PRODUCTS.find((p) => p.upc === upc),
    me: () => ({ id: 'u1', name: 'Ada' }),
    vault: () => VAULT,
    search: () => [PRODUCTS[0], VAULT],
    accounts: () => ACCOUNTS,
  },
  Product: { __resolveReference: (ref: { upc: string }) => PRODUCTS.find((p) => p.upc === ref.upc) },
  Result: { __resolveType: (value: object) => ('secret' in value ? 'Vault' : 'Product') },
  Account: { __resolveType: (value: object) => ('owner' in value ? 'Personal' : 'Business') },
};

const reviewsResolvers = {
  Query: { topReview: () => REVIEWS['1']![0] },
  Product: {
    __resolveReference: (ref: { upc: string }) => ref,
    reviews: (product: { upc: string }) => REVIEWS[product.upc] ?? [],
  },
};

const ISSUER = 'https://issuer.authz.test';
const AUDIENCE = 'jarvis-api';
const UNAUTHORIZED = 'UNAUTHORIZED_FIELD_OR_TYPE';

interface Grants {
  scopes?: string[];
  permissions?: string[];
}

interface Answer {
  status: number;
  data: Record<string, unknown> | null | undefined;
  errors: { message: string; path?: (string | number)[]; extensions?: { code?: string } }[] | undefined;
}

const subgraphServers: FastifyInstance[] = [];
let subgraphRequests = 0;
/** Every operation document the subgraphs received, in order. */
const subgraphQueries: string[] = [];
let supergraphSdl: string;
let issuer: TestIssuer;
let gateway: RunningService;
let rejectingGateway: RunningService;

async function startSubgraph(sdl: string, resolvers: object): Promise<string> {
  const server = Fastify();
  server.addHook('onRequest', async () => void subgraphRequests++);
  server.addHook('preHandler', async (request) => void subgraphQueries.push((request.body as { query: string }).query));
  await server.register(mercurius, { schema: buildSubgraphSchema([{ typeDefs: parse(sdl), resolvers: resolvers as never }]) });
  subgraphServers.push(server);
  return `${await server.listen({ port: 0, host: '127.0.0.1' })}/graphql`;
}

async function startGateway(extra: Record<string, string> = {}): Promise<RunningService> {
  const path = join(mkdtempSync(join(tmpdir(), 'supergraph-authz-')), 'supergraph.graphql');
  writeFileSync(path, supergraphSdl);
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    SUPERGRAPH_PATH: path,
    SUBGRAPH_URLS: `catalog=${catalogUrl},reviews=${reviewsUrl}`,
    INTERNAL_AUTH_SECRET: randomBytes(32).toString('base64url'),
    ...issuer.env,
    ...extra,
  });
  return (await createGatewayServer(config)).start(0);
}

let catalogUrl: string;
let reviewsUrl: string;

async function token({ scopes = [], permissions = [] }: Grants = {}): Promise<string> {
  return issuer.sign({ tid: randomUUID(), scope: scopes.join(' '), permissions });
}

/** Asks a gateway as an anonymous caller (no grants) or as a signed-in one with these grants. */
async function ask(
  operation: string | { query: string; variables: Record<string, unknown> },
  grants?: Grants,
  target: RunningService = gateway,
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (grants) headers.authorization = `Bearer ${await token(grants)}`;
  const body = typeof operation === 'string' ? { query: operation } : operation;
  const response = await fetch(target.url, { method: 'POST', headers, body: JSON.stringify(body) });
  const answer = (await response.json()) as Omit<Answer, 'status'>;
  return { status: response.status, data: answer.data, errors: answer.errors };
}

const unauthorizedPaths = (answer: Answer) => {
  assert.ok(answer.errors?.every((error) => error.extensions?.code === UNAUTHORIZED), JSON.stringify(answer.errors));
  assert.ok(answer.errors?.every((error) => error.message === 'Unauthorized field or type'));
  return answer.errors?.map((error) => error.path);
};

const EVERYTHING: Grants = {
  scopes: ['catalog:admin', 'ledger:read'],
  permissions: ['usage:read', 'kb:read', 'chat:use'],
};

before(async () => {
  issuer = await testIssuer({ issuer: ISSUER, audience: AUDIENCE, kid: 'authz-key' });

  catalogUrl = await startSubgraph(CATALOG_SDL, catalogResolvers);
  reviewsUrl = await startSubgraph(REVIEWS_SDL, reviewsResolvers);
  const composed = composeServices([
    { name: 'catalog', url: 'http://127.0.0.1:9/graphql', typeDefs: parse(CATALOG_SDL) },
    { name: 'reviews', url: 'http://127.0.0.1:9/graphql', typeDefs: parse(REVIEWS_SDL) },
  ]);
  assert.ok(!composed.errors, String(composed.errors));
  supergraphSdl = composed.supergraphSdl;
  gateway = await startGateway();
  rejectingGateway = await startGateway({ AUTHZ_REJECT_UNAUTHORIZED: 'true' });
});

after(async () => {
  await gateway?.close();
  await rejectingGateway?.close();
  for (const server of subgraphServers) await server.close();
  await issuer?.close();
});

describe('the supergraph handed to @apollo/gateway', () => {
  test('the composed supergraph links the features for SECURITY, which @apollo/gateway refuses', async () => {
    assert.match(supergraphSdl, /@link\(url: "https:\/\/specs.apollo.dev\/authenticated\/v0.1", for: SECURITY\)/);
    const refusing = new ApolloGateway({ supergraphSdl, logger: silentLogger });
    await assert.rejects(refusing.load(), /is for: SECURITY but is unsupported/);
  });

  test('the copy without that marker loads and keeps every authorization directive', async () => {
    const { gatewaySdl, rules } = readAuthorization(supergraphSdl);
    const accepting = new ApolloGateway({ supergraphSdl: gatewaySdl, logger: silentLogger });
    const { executor } = await accepting.load();
    assert.ok(executor);
    await accepting.stop();
    assert.equal(gatewaySdl, supergraphSdl.replaceAll('for: SECURITY', ''), 'only the marker is cut');
    assert.equal(rules.fields.get('Review.author')?.authenticated, true);
    assert.equal(rules.types.get('Vault')?.authenticated, true);
  });
});

describe('authorization directives through the gateway', () => {
  test('an authorized request passes unchanged', async () => {
    const answer = await ask('{ products { upc name cost margin reviews { body author } } me { name } vault { secret } }', EVERYTHING);
    assert.equal(answer.status, 200);
    assert.equal(answer.errors, undefined);
    assert.deepEqual(answer.data, {
      products: PRODUCTS.map((p) => ({ ...p, reviews: REVIEWS[p.upc] })),
      me: { name: 'Ada' },
      vault: { secret: 'gold' },
    });
  });

  test('@authenticated on a field: null for an anonymous caller, data for a signed-in one', async () => {
    const anonymous = await ask('{ products { name } me { name } }');
    assert.equal(anonymous.status, 200);
    assert.deepEqual(anonymous.data, { products: [{ name: 'Table' }, { name: 'Couch' }], me: null });
    assert.deepEqual(unauthorizedPaths(anonymous), [['me']]);

    const signedIn = await ask('{ products { name } me { name } }', {});
    assert.deepEqual(signedIn.data, { products: [{ name: 'Table' }, { name: 'Couch' }], me: { name: 'Ada' } });
    assert.equal(signedIn.errors, undefined);
  });

  test('@authenticated on a type applies to every field returning it', async () => {
    const anonymous = await ask('{ products { upc } vault { id secret } }');
    assert.deepEqual(anonymous.data, { products: [{ upc: '1' }, { upc: '2' }], vault: null });
    assert.deepEqual(unauthorizedPaths(anonymous), [['vault']]);
    assert.deepEqual((await ask('{ vault { id secret } }', {})).data, { vault: VAULT });
  });

  test('@requiresScopes: any one inner list, all of its scopes', async () => {
    const query = '{ products { name cost } }';
    const costs = { products: PRODUCTS.map(({ name, cost }) => ({ name, cost })) };
    const withoutCosts = { products: PRODUCTS.map(({ name }) => ({ name, cost: null })) };

    assert.deepEqual((await ask(query, { scopes: ['catalog:read', 'catalog:cost'] })).data, costs, 'the first list, complete');
    assert.deepEqual((await ask(query, { scopes: ['catalog:admin'] })).data, costs, 'the second list');
    for (const scopes of [['catalog:read'], ['catalog:cost', 'other'], []]) {
      const partial = await ask(query, { scopes });
      assert.deepEqual(partial.data, withoutCosts, `scopes ${scopes.join(' ')}`);
      assert.deepEqual(unauthorizedPaths(partial), [['products', '@', 'cost']]);
    }
  });

  test('@policy: policies are permissions, all of an inner list required', async () => {
    const query = '{ topReview { body } products { upc } }';
    const denied = await ask(query, { permissions: ['kb:read'] });
    assert.deepEqual(denied.data, { topReview: null, products: [{ upc: '1' }, { upc: '2' }] });
    assert.deepEqual(unauthorizedPaths(denied), [['topReview']]);
    const allowed = await ask(query, { permissions: ['kb:read', 'chat:use'] });
    assert.deepEqual(allowed.data, { topReview: { body: 'Sturdy' }, products: [{ upc: '1' }, { upc: '2' }] });
    assert.deepEqual((await ask(query, { scopes: ['kb:read', 'chat:use'] })).data?.topReview, null, 'scopes are not permissions');
  });

  test('partial results: null in every list item, under aliases, across subgraphs; the rest intact', async () => {
    const answer = await ask('{ items: products { label: name reviews { text: body by: author } } }');
    assert.deepEqual(answer.data, {
      items: [
        { label: 'Table', reviews: [{ text: 'Sturdy', by: null }, { text: 'Heavy', by: null }] },
        { label: 'Couch', reviews: [{ text: 'Comfy', by: null }] },
      ],
    });
    assert.deepEqual(unauthorizedPaths(answer), [['items', '@', 'reviews', '@', 'by']]);
  });

  test('a removed non-null field nulls its nearest nullable parent', async () => {
    const answer = await ask('{ product(upc: "1") { name margin } products { name } }', {});
    assert.deepEqual(answer.data, { product: null, products: [{ name: 'Table' }, { name: 'Couch' }] });
    assert.deepEqual(unauthorizedPaths(answer), [['product', 'margin']]);
  });

  test('and data itself when no parent on the way is nullable', async () => {
    const before = subgraphRequests;
    const answer = await ask('{ products { name margin } }', {});
    assert.equal(answer.data, null);
    assert.deepEqual(unauthorizedPaths(answer), [['products', '@', 'margin']]);
    assert.ok(subgraphRequests > before, 'the authorized part was executed');
  });

  test('fields reached through named and inline fragments', async () => {
    const named = await ask('{ products { ...Priced } } fragment Priced on Product { name cost }');
    assert.deepEqual(named.data, { products: PRODUCTS.map(({ name }) => ({ name, cost: null })) });
    assert.deepEqual(unauthorizedPaths(named), [['products', '@', 'cost']]);

    const inline = await ask('{ products { ... on Product { name cost } } }');
    assert.deepEqual(inline.data, named.data);
    assert.deepEqual(unauthorizedPaths(inline), [['products', '@', '... on Product', 'cost']]);
  });

  test('an interface field is removed when an implementation requires more than the caller has', async () => {
    const direct = await ask('{ accounts { id balance } }', {});
    assert.deepEqual(direct.data, { accounts: [{ id: 'p1', balance: null }, { id: 'b1', balance: null }] });
    assert.deepEqual(unauthorizedPaths(direct), [['accounts', '@', 'balance']]);

    const query = '{ accounts { id ... on Business { balance } ... on Personal { balance owner } } }';
    const narrowed = await ask(query, {});
    assert.deepEqual(narrowed.data, {
      accounts: [
        { id: 'p1', balance: null, owner: 'ada' },
        { id: 'b1', balance: 99 },
      ],
    });
    assert.deepEqual(unauthorizedPaths(narrowed), [['accounts', '@', '... on Personal', 'balance']]);
    assert.deepEqual((await ask(query, { scopes: ['ledger:read'] })).data, { accounts: ACCOUNTS.map((a) => ({ ...a })) });
  });

  test('a fragment on a union member the caller may not see: its fields null on those objects only', async () => {
    const answer = await ask('{ search { ... on Product { name } ... on Vault { secret } } }');
    assert.deepEqual(answer.data, { search: [{ name: 'Table' }, { secret: null }] });
    assert.deepEqual(unauthorizedPaths(answer), [['search', '@', '... on Vault']]);
  });

  test('a request with nothing authorized is rejected without reaching any subgraph', async () => {
    const before = subgraphRequests;
    const answer = await ask('{ me { name } vault { secret } }');
    assert.equal(answer.status, 200);
    assert.equal(answer.data, null);
    assert.deepEqual(unauthorizedPaths(answer), [['me'], ['vault']]);
    assert.equal(subgraphRequests, before);
  });

  test('variables that do not coerce are a bad request, also when only unauthorized fields use them', async () => {
    const before = subgraphRequests;
    const partly = 'query ($upc: ID!) { products { name } product(upc: $upc) { margin } }';
    const wholly = 'query ($upc: ID!) { vault { id } product(upc: $upc) { margin } }';
    for (const query of [partly, wholly]) {
      const answer = await ask({ query, variables: { upc: { not: 'an id' } } });
      assert.deepEqual(answer.errors?.map((error) => error.extensions?.code), ['BAD_USER_INPUT'], JSON.stringify(answer));
      assert.equal(answer.data, undefined);
    }
    assert.equal(subgraphRequests, before);
    const valid = await ask({ query: partly, variables: { upc: '1' } });
    assert.deepEqual(valid.data, { products: [{ name: 'Table' }, { name: 'Couch' }], product: null });
    assert.deepEqual(unauthorizedPaths(valid), [['product', 'margin']]);
  });

  test('reject mode refuses the whole request when anything is unauthorized', async () => {
    const before = subgraphRequests;
    const answer = await ask('{ products { name cost } }', { scopes: ['catalog:read'] }, rejectingGateway);
    assert.equal(answer.data, null);
    assert.deepEqual(unauthorizedPaths(answer), [['products', '@', 'cost']]);
    assert.equal(subgraphRequests, before);

    const allowed = await ask('{ products { name cost } }', { scopes: ['catalog:admin'] }, rejectingGateway);
    assert.deepEqual(allowed.data, { products: PRODUCTS.map(({ name, cost }) => ({ name, cost })) });
  });

  test('one operation for callers with different grants: nothing cached for one leaks to the other', async () => {
    const query = 'query Costs { products { name cost reviews { body author } } }';
    const view = (withCost: boolean, withAuthor: boolean) => ({
      products: PRODUCTS.map(({ name, cost, upc }) => ({
        name,
        cost: withCost ? cost : null,
        reviews: REVIEWS[upc]!.map(({ body, author }) => ({ body, author: withAuthor ? author : null })),
      })),
    });
    for (let round = 0; round < 2; round++) {
      const sent = subgraphQueries.length;
      assert.deepEqual((await ask(query)).data, view(false, false));
      const anonymousFetches = subgraphQueries.slice(sent).join('\n');
      assert.doesNotMatch(anonymousFetches, /cost|author/, 'unauthorized fields are never fetched');
      assert.deepEqual((await ask(query, { scopes: ['catalog:admin'] })).data, view(true, true));
      assert.deepEqual((await ask(query, {})).data, view(false, true));
    }
  });
});

const silentLogger = { debug() {}, info() {}, warn() {}, error() {} };
