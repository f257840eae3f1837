import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { composeServices } from '@apollo/composition';
import { buildSubgraphSchema } from '@apollo/subgraph';
import Fastify from 'fastify';
import { parse } from 'graphql';
import mercurius from 'mercurius';
import { createGatewayServer } from '@jarvis/gateway';
import { graphql } from '@jarvis/platform/client';
import { loadConfig } from '@jarvis/platform/config';
import type { RunningService } from '@jarvis/platform/http';

// A supergraph that has nothing to do with Jarvis: the gateway serves whatever file it is given.
const PRODUCTS_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])
  type Query { topProducts(first: Int = 2): [Product!]! }
  type Product @key(fields: "upc") { upc: ID! name: String! }
`;
const PRODUCTS = [
  { upc: '1', name: 'Table' },
  { upc: '2', name: 'Couch' },
  { upc: '3', name: 'Chair' },
];

let products: ReturnType<typeof Fastify>;
let gateway: RunningService;
let connectionsOpened = 0;

before(async () => {
  products = Fastify();
  products.server.on('connection', () => connectionsOpened++);
  await products.register(mercurius, {
    schema: buildSubgraphSchema([
      {
        typeDefs: parse(PRODUCTS_SDL),
        resolvers: {
          Query: { topProducts: (_: unknown, args: { first: number }) => PRODUCTS.slice(0, args.first) },
          Product: { __resolveReference: (ref: { upc: string }) => PRODUCTS.find((p) => p.upc === ref.upc) },
        },
      },
    ]),
  });
  const productsUrl = `${await products.listen({ port: 0, host: '127.0.0.1' })}/graphql`;

  // The URL in the file is deliberately wrong: SUBGRAPH_URLS must override it.
  const composed = composeServices([{ name: 'products', url: 'http://127.0.0.1:9/graphql', typeDefs: parse(PRODUCTS_SDL) }]);
  assert.ok(!composed.errors, String(composed.errors));
  const path = join(mkdtempSync(join(tmpdir(), 'supergraph-')), 'products.graphql');
  writeFileSync(path, composed.supergraphSdl);

  const config = loadConfig({
    LOG_LEVEL: 'silent',
    SUPERGRAPH_PATH: path,
    SUBGRAPH_URLS: `products=${productsUrl}`,
    INTERNAL_AUTH_SECRET: 'a-secret-this-foreign-subgraph-simply-ignores',
  });
  gateway = await (await createGatewayServer(config)).start(0);
});

after(async () => {
  await gateway?.close();
  await products?.close();
});

test('the gateway serves a supergraph file named by configuration, with subgraph URLs overridden', async () => {
  const data = await graphql(gateway.url, `{ topProducts(first: 3) { upc name } }`);
  assert.deepEqual(data, { topProducts: PRODUCTS });
});

test('requests to a subgraph reuse keep-alive connections', async () => {
  const before = connectionsOpened;
  for (let i = 0; i < 25; i++) await graphql(gateway.url, `{ topProducts { name } }`);
  assert.ok(connectionsOpened - before <= 1, `opened ${connectionsOpened - before} connections for 25 sequential requests`);
});
