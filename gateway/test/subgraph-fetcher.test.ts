import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ANONYMOUS, PRINCIPAL_HEADER, principalSigner, type Principal } from '@jarvis/platform/contracts';
import { createServiceMetrics } from '@jarvis/platform/metrics';
import { createGatewayMetrics } from '../src/metrics.ts';
import { createSubgraphFetcher } from '../src/subgraph-fetcher.ts';

const signer = principalSigner('subgraph-fetcher-test-secret-of-32-characters');
const alice: Principal = { ...ANONYMOUS, tenantId: '00000000-0000-4000-8000-000000000001', userId: '00000000-0000-4000-8000-000000000002', roles: ['owner'] };
const bob: Principal = { ...alice, userId: '00000000-0000-4000-8000-000000000003' };

let url: string;
let received = 0;
const server = createServer((request, response) => {
  received += 1;
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  // Slow enough for the fetches of one test to overlap.
  request.on('end', () => setTimeout(() => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { echo: body.length, n: received } })), 50));
});
before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});
after(() => server.close());

const subgraphs = createSubgraphFetcher(4, createGatewayMetrics(createServiceMetrics('test').registry).subgraphFetch);
after(() => subgraphs.close());
const fetcher = subgraphs.fetcherFor('tenancy');

async function send(query: string, caller: Principal, variables: Record<string, unknown> = {}) {
  const init = { method: 'POST', headers: { 'content-type': 'application/json', [PRINCIPAL_HEADER]: await signer.sign(caller) }, body: JSON.stringify({ query, variables }) };
  const response = await fetcher(url, init as never);
  return (await response.json()) as { data: { n: number } };
}

async function requestsFor(work: () => Promise<unknown>): Promise<number> {
  const before = received;
  await work();
  return received - before;
}

test('identical queries of one caller in flight together are sent once, and each gets the answer', async () => {
  let answers: { data: { n: number } }[] = [];
  const sent = await requestsFor(async () => {
    answers = await Promise.all(Array.from({ length: 10 }, () => send('query Q { tenant { name } }', alice)));
  });
  assert.equal(sent, 1);
  assert.equal(new Set(answers.map((answer) => answer.data.n)).size, 1);
});

test('another caller, other variables, a mutation or a later query is sent on its own', async () => {
  assert.equal(await requestsFor(() => Promise.all([send('query Q { tenant { name } }', alice), send('query Q { tenant { name } }', bob)])), 2, 'another caller');
  assert.equal(await requestsFor(() => Promise.all([send('query Q($id: ID!) { x(id: $id) }', alice, { id: 1 }), send('query Q($id: ID!) { x(id: $id) }', alice, { id: 2 })])), 2, 'other variables');
  assert.equal(await requestsFor(() => Promise.all(Array.from({ length: 3 }, () => send('mutation M { touch }', alice)))), 3, 'mutations');
  assert.equal(await requestsFor(async () => {
    await send('{ tenant { name } }', alice);
    await send('{ tenant { name } }', alice);
  }), 2, 'nothing is kept once answered');
});
