/**
 * The plan's request rate at the gateway: per tenant and, tighter, per API key; over it the whole request is
 * refused with 429, Retry-After and RATE_LIMITED; under it every answer says what is left (RateLimit fields).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PLAN_QUOTAS } from '@jarvis/platform/contracts';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import type { Stack } from '../scripts/stack.ts';
import { serviceKey, signUp, startTestStack, type TestStack } from './helpers.ts';

const FREE = PLAN_QUOTAS.FREE;

async function ask(stack: Stack, headers: Record<string, string>) {
  const response = await fetch(stack.gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: '{ tenant { slug } }' }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string; retryAfter?: number } }[] };
  return { status: response.status, headers: response.headers, body };
}

describe('plan request rates at the gateway', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(databaseVariants()[0]!, { AUTH_DEV_LOGIN: 'true', TOKEN_EXCHANGE_CACHE_SECONDS: '30' });
  });
  after(() => stack?.close());

  test("a FREE tenant gets its burst, then 429 with Retry-After until the rate replenishes; answers carry what is left", async () => {
    const owner = await signUp(stack, 'free', { plan: 'FREE' });
    const first = await ask(stack, owner.headers);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('ratelimit-limit'), String(FREE.burst));
    assert.equal(Number(first.headers.get('ratelimit-remaining')), FREE.burst - 1);

    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 3 * FREE.burst }, () => ask(stack, owner.headers)));
    const elapsedSeconds = (Date.now() - started) / 1000;
    const admitted = answers.filter((a) => a.status === 200).length;
    // The burst left, plus what the sustained rate replenished while the requests were under way.
    assert.ok(admitted >= FREE.burst - 1 && admitted <= FREE.burst - 1 + Math.ceil(elapsedSeconds * FREE.requestsPerSecond) + 1, `admitted ${admitted}`);
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(refused.length, answers.length - admitted);
    for (const answer of refused) {
      assert.equal(answer.body.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
      assert.equal(Number(answer.headers.get('retry-after')), answer.body.errors?.[0]?.extensions?.retryAfter);
    }

    // A refused request takes nothing from the rate, so asking until one is admitted waits for it to replenish.
    const retryAfterMs = Math.max(...refused.map((answer) => Number(answer.headers.get('retry-after')) * 1000));
    await waitFor(async () => (await ask(stack, owner.headers)).status === 200, 'the rate to replenish', { timeoutMs: retryAfterMs + 5_000, intervalMs: 20 });
  });

  test('an API key has a tighter rate of its own; its tenant keeps the rest', async () => {
    const owner = await signUp(stack, 'keyed', { plan: 'FREE' });
    const key = await serviceKey(stack, owner, { roles: ['viewer'] });
    // Setting up took from the tenant's burst: the key's requests below must find all of it back.
    const remaining = async () => Number((await ask(stack, owner.headers)).headers.get('ratelimit-remaining'));
    await waitFor(remaining, "the tenant's burst back after setting up", { until: (left) => left >= FREE.burst - 1, intervalMs: 1000 / FREE.requestsPerSecond });
    const started = Date.now();
    const byKey = await Promise.all(Array.from({ length: 2 * FREE.apiKeyBurst }, async () => (await ask(stack, key.headers)).status));
    const replenished = Math.ceil(((Date.now() - started) / 1000) * FREE.apiKeyRequestsPerSecond) + 1;
    const admitted = byKey.filter((status) => status === 200).length;
    assert.ok(admitted >= FREE.apiKeyBurst && admitted <= FREE.apiKeyBurst + replenished, `the key got ${admitted}`);
    assert.ok(byKey.includes(429));
    assert.equal((await ask(stack, owner.headers)).status, 200, 'the owner still has the tenant allowance');
  });

  test("anonymous callers have no plan: their address's rate applies instead", async () => {
    const answer = await fetch(stack.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ permissions { name } }' }),
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('ratelimit-limit'), String(stack.config.ANONYMOUS_BURST));
  });
});
