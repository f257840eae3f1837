import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import Fastify from 'fastify';
import { ConfigError, loadConfig } from '@jarvis/platform/config';
import { ANONYMOUS, PRINCIPAL_HEADER, principalSigner, type Principal } from '@jarvis/platform/contracts';
import { subgraphClient, SubgraphRequestError, subgraphUrl } from '@jarvis/platform/subgraph-client';
import { freePort } from '@jarvis/platform/testing';

const signer = principalSigner(randomBytes(32).toString('base64url'));
const caller: Principal = { tenantId: randomUUID(), userId: randomUUID(), roles: ['member'], scopes: [], permissions: ['kb:read'], isolation: 'SHARED' };
const server = Fastify();
let url: string;

before(async () => {
  // A subgraph as the adapter meets one: it checks the signed principal and answers data or errors.
  server.post('/graphql', async (request) => {
    const principal = await signer.verify(request.headers[PRINCIPAL_HEADER] as string | undefined);
    const { query, variables } = request.body as { query: string; variables: { fail?: boolean } };
    if (variables.fail) return { data: null, errors: [{ message: 'no such knowledge base', extensions: { code: 'NOT_FOUND' } }] };
    return { data: { echo: { query, tenantId: principal.tenantId } } };
  });
  url = `${await server.listen({ port: 0, host: '127.0.0.1' })}/graphql`;
});
after(() => server.close());

test("asks as the caller: the other subgraph sees the caller's principal, signed", async () => {
  const client = subgraphClient({ name: 'knowledge', url, signer });
  assert.deepEqual(await client.request(caller, '{ search }', {}), { echo: { query: '{ search }', tenantId: caller.tenantId } });
});

test("an answer with errors is the first error's code; no answer at all is SUBGRAPH_UNAVAILABLE", async () => {
  const client = subgraphClient({ name: 'knowledge', url, signer });
  await assert.rejects(client.request(caller, '{ search }', { fail: true }), (error: Error) => {
    assert.ok(error instanceof SubgraphRequestError);
    assert.deepEqual([error.code, error.message], ['NOT_FOUND', 'no such knowledge base']);
    return true;
  });
  const nowhere = subgraphClient({ name: 'knowledge', url: `http://127.0.0.1:${await freePort()}/graphql`, signer });
  await assert.rejects(nowhere.request(ANONYMOUS, '{ search }', {}), { name: 'SubgraphRequestError', code: 'SUBGRAPH_UNAVAILABLE' });
});

test('where another subgraph lives is configuration: unset, the service refuses to start, naming the variable', () => {
  assert.equal(subgraphUrl(loadConfig({ SUBGRAPH_URLS: 'knowledge=http://knowledge:4002/graphql' }), 'knowledge'), 'http://knowledge:4002/graphql');
  assert.throws(() => subgraphUrl(loadConfig({}), 'knowledge'), (error: Error) => error instanceof ConfigError && /SUBGRAPH_URLS/.test(error.message));
});
