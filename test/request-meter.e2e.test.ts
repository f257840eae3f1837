/** The gateway counts each tenant's requests into the usage ledger (REQUESTS), once per flush, each once. */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { graphql } from '@jarvis/platform/client';
import { trustTenancyIssuer } from '@jarvis/platform/config';
import { PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { databaseVariants, freePort, redisVariants, waitFor } from '@jarvis/platform/testing';
import { as, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

/** Read straight from the usage subgraph, so reading is not itself a metered request. */
async function requests(stack: TestStack, member: Member): Promise<number> {
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

describe("the gateway meters each tenant's requests", () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!, { AUTH_DEV_LOGIN: 'true', REQUEST_METER_FLUSH_MS: '100' });
  });
  after(() => stack?.close());
  const requestsOf = (member: Member) => requests(stack, member);

  test('requests of a signed-in caller are counted for its tenant, and only its', async () => {
    const acme = await signUp(stack, 'metered');
    const other = await signUp(stack, 'unmetered');
    const witness = await signUp(stack, 'witness');
    for (let i = 0; i < 5; i++) await as(stack, acme, `{ tenant { slug } }`);
    await waitFor(() => requestsOf(acme), "acme's five requests in the ledger", { until: (n) => n === 5, intervalMs: 50 });
    assert.equal(await requestsOf(other), 0, 'none of them for the neighbour');
    await as(stack, other, `{ tenant { slug } }`);
    await waitFor(() => requestsOf(other), "the neighbour's request in the ledger", { until: (n) => n === 1, intervalMs: 50 });
    // A request made after all the others, once counted, means every earlier flush has reached the ledger too.
    await as(stack, witness, `{ tenant { slug } }`);
    await waitFor(() => requestsOf(witness), "the witness's request in the ledger", { until: (n) => n === 1, intervalMs: 50 });
    assert.deepEqual([await requestsOf(acme), await requestsOf(other)], [5, 1], 'each counted once');
  });
});

const SERVE = fileURLToPath(new URL('../scripts/serve.ts', import.meta.url));
const postgres = databaseVariants()[1]!;
const redis = redisVariants()[1]!;

describe('request counts survive a gateway killed before it flushed them', { skip: postgres.skip || redis.skip }, () => {
  let stack: TestStack;
  const gateways: ChildProcess[] = [];
  before(async () => {
    // The in-process gateway shares the Redis prefix but never flushes during the test: only the restarted one does.
    stack = await startTestStack(postgres, { AUTH_DEV_LOGIN: 'true', REQUEST_METER_FLUSH_MS: String(3_600_000) });
  });
  after(async () => {
    for (const gateway of gateways) gateway.kill('SIGKILL');
    await stack?.close();
  });

  /** A gateway process sharing the stack's subgraphs, secret and Redis, flushing every `flushMs`. */
  async function gatewayProcess(flushMs: number): Promise<{ url: string; process: ChildProcess }> {
    const port = await freePort();
    const tenancyBase = new URL(stack.subgraphUrls.tenancy!).origin;
    const { config } = stack;
    const env = {
      ...process.env,
      LOG_LEVEL: 'silent',
      GATEWAY_PORT: String(port),
      INTERNAL_AUTH_SECRET: config.INTERNAL_AUTH_SECRET,
      OPERATOR_TOKEN: config.OPERATOR_TOKEN,
      REDIS_URL: config.REDIS_URL,
      REDIS_KEY_PREFIX: config.REDIS_KEY_PREFIX,
      REQUEST_METER_FLUSH_MS: String(flushMs),
      SUBGRAPH_URLS: Object.entries(stack.subgraphUrls).map(([name, url]) => `${name}=${url}`).join(','),
      ...trustTenancyIssuer(config, tenancyBase),
    };
    const child = fork(SERVE, ['gateway'], { env, execArgv: ['--import', 'tsx'], stdio: 'ignore' });
    gateways.push(child);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(() => fetch(`${base}/readyz`).then((r) => r.ok, () => false), 'the gateway process ready', { timeoutMs: 60_000, intervalMs: 100 });
    return { url: `${base}/graphql`, process: child };
  }

  test('every answered request is in the ledger after SIGKILL and a restart', async () => {
    const first = await gatewayProcess(3_600_000);
    const via = { ...stack, gatewayUrl: first.url };
    const member = await signUp(via, 'killed');
    const answered = 25;
    await Promise.all(Array.from({ length: answered }, () => as(via, member, `{ tenant { slug } }`)));
    first.process.kill('SIGKILL');
    await once(first.process, 'exit');
    assert.equal(await requests(stack, member), 0, 'nothing was flushed before the kill');

    await gatewayProcess(100);
    await waitFor(() => requests(stack, member), 'the counts in the ledger', { until: (n) => n >= answered, intervalMs: 100, timeoutMs: 30_000 });
    // Several flushes later the ledger holds each count once: batches are acknowledged, not resent.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await requests(stack, member), answered);
  });
});
