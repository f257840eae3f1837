/** The gateway counts each tenant's requests into the usage ledger (REQUESTS), once per flush, each once. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { graphql, PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { as, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

describe("the gateway meters each tenant's requests", () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!, { AUTH_DEV_LOGIN: 'true', REQUEST_METER_FLUSH_MS: '100' });
  });
  after(() => stack?.close());

  /** Read straight from the usage subgraph, so reading is not itself a metered request. */
  async function requests(member: Member): Promise<number> {
    const principal = { tenantId: member.tenantId, roles: [], scopes: [], permissions: ['usage:read'], isolation: 'SHARED' as const };
    const token = await principalSigner(stack.config.INTERNAL_AUTH_SECRET!).sign(principal);
    const data = await graphql<{ _entities: { usage: { totals: { metric: string; quantity: number }[] } }[] }>(
      stack.subgraphUrls.usage!,
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Tenant { usage { totals { metric quantity } } } } }`,
      { r: [{ __typename: 'Tenant', id: member.tenantId }] },
      { [PRINCIPAL_HEADER]: token },
    );
    return data._entities[0]!.usage.totals.find((t) => t.metric === 'REQUESTS')!.quantity;
  }

  test('requests of a signed-in caller are counted for its tenant, and only its', async () => {
    const acme = await signUp(stack, 'metered');
    const other = await signUp(stack, 'unmetered');
    const witness = await signUp(stack, 'witness');
    for (let i = 0; i < 5; i++) await as(stack, acme, `{ tenant { slug } }`);
    await waitFor(() => requests(acme), "acme's five requests in the ledger", { until: (n) => n === 5, intervalMs: 50 });
    assert.equal(await requests(other), 0, 'none of them for the neighbour');
    await as(stack, other, `{ tenant { slug } }`);
    await waitFor(() => requests(other), "the neighbour's request in the ledger", { until: (n) => n === 1, intervalMs: 50 });
    // A request made after all the others, once counted, means every earlier flush has reached the ledger too.
    await as(stack, witness, `{ tenant { slug } }`);
    await waitFor(() => requests(witness), "the witness's request in the ledger", { until: (n) => n === 1, intervalMs: 50 });
    assert.deepEqual([await requests(acme), await requests(other)], [5, 1], 'each counted once');
  });
});
