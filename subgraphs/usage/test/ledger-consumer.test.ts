/**
 * Usage events reach the ledger at least once and count exactly once: through a producer's transactional
 * outbox and the bus (in-process; RabbitMQ when AMQP_URL is set), duplicated, redelivered, and — on RabbitMQ
 * with PostgreSQL — with the usage service killed mid-stream and started again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import pg from 'pg';
import { openConfiguredBus, type Bus } from '@jarvis/platform/bus';
import { postGraphQL } from '@jarvis/platform/client';
import type { Config } from '@jarvis/platform/config';
import { PLAN_QUOTAS, PRINCIPAL_HEADER, principalSigner, SIGNED_USAGE_METRICS, USAGE_METRICS, USAGE_TOPIC, usageEvent, type Principal } from '@jarvis/platform/contracts';
import type { RunningService } from '@jarvis/platform/http';
import { createLogger } from '@jarvis/platform/logger';
import { startOutboxRelay, writeEvent } from '@jarvis/platform/outbox';
import { createSubgraphServer } from '@jarvis/platform/subgraph';
import { busVariants, databaseVariants, dropSchemas, freePort, openTestDatabase, testConfig, waitFor } from '@jarvis/platform/testing';
import { usageSubgraph } from '@jarvis/usage';

const AMQP_URL = process.env.AMQP_URL || undefined;
const LEDGER_QUEUE = `usage-ledger.${USAGE_TOPIC}`;
/** How long the ledger gets to catch up, and how often it is asked. */
const LEDGER_WAIT = { timeoutMs: 20_000, intervalMs: 25 };

/** Drops the exchange and queues of a bus namespace once a suite is done with RabbitMQ. */
async function deleteNamespace(amqpUrl: string, namespace: string) {
  const connection = await connect(amqpUrl);
  const channel = await connection.createChannel();
  for (const suffix of ['', '.retry', '.dead']) await channel.deleteQueue(`${namespace}.${LEDGER_QUEUE}${suffix}`);
  await channel.deleteExchange(`${namespace}.events`);
  await connection.close();
}

const reader = (tenantId: string, isolation: Principal['isolation'] = 'SHARED'): Principal => ({
  tenantId,
  roles: ['admin'],
  scopes: [],
  permissions: ['usage:read'],
  isolation,
});

for (const variant of databaseVariants()) {
  for (const transport of busVariants()) {
    const skip = variant.skip || transport.skip;
    describe(`usage ledger from the bus, ${transport.name}, on ${variant.name}`, { skip }, () => {
      let config: Config;
      let bus: Bus;
      let usage: RunningService;
      const namespace = `test-${randomBytes(4).toString('hex')}`;

      before(async () => {
        // The transport under test, whatever testConfig would pick for this database ('' is unset).
        config = testConfig(variant, { BUS_NAMESPACE: namespace, AMQP_URL: transport.url ?? '' });
        bus = await openConfiguredBus(config, createLogger('bus', 'silent'));
        usage = await (await createSubgraphServer(usageSubgraph, config, { bus })).start(0);
      });
      after(async () => {
        await usage?.close();
        await bus?.close();
        if (transport.url) await deleteNamespace(transport.url, namespace);
        if (variant.url && config.DATABASE_SCHEMA_PREFIX) await dropSchemas(variant.url, config.DATABASE_SCHEMA_PREFIX);
      });

      async function usageOf(principal: Principal, groupBy?: string) {
        const token = await principalSigner(config.INTERNAL_AUTH_SECRET!).sign(principal);
        const query = `query($r: [_Any!]!, $g: UsageGroupBy) { _entities(representations: $r) {
          ... on Tenant { usage(groupBy: $g) { totals { metric quantity } groups { key totals { metric quantity } } } } } }`;
        const { body } = await postGraphQL<{ _entities: { usage: { totals: { metric: string; quantity: number }[]; groups: { key: string | null; totals: { metric: string; quantity: number }[] }[] } }[] }>(
          usage.url,
          query,
          { r: [{ __typename: 'Tenant', id: principal.tenantId }], g: groupBy },
          { [PRINCIPAL_HEADER]: token },
        );
        assert.equal(body.errors, undefined, JSON.stringify(body.errors));
        return body.data!._entities[0]!.usage;
      }
      const total = (totals: { metric: string; quantity: number }[], metric: string) => totals.find((t) => t.metric === metric)!.quantity;

      test('events written through a producer outbox count once, duplicates and redeliveries included, broken down by model and member', async () => {
        const producer = await openTestDatabase(variant, 'producer');
        await producer.migrate(mkdtempSync(join(tmpdir(), 'no-migrations-')));
        const relay = startOutboxRelay({ db: producer, bus, log: createLogger('relay', 'silent'), pollMs: 20 });
        try {
          const tenantId = randomUUID();
          const ada = randomUUID();
          const events = [
            usageEvent(tenantId, { metric: 'PROMPT_TOKENS', quantity: 100, model: 'small', userId: ada }),
            usageEvent(tenantId, { metric: 'PROMPT_TOKENS', quantity: 50, model: 'large', userId: ada }),
            usageEvent(tenantId, { metric: 'COMPLETION_TOKENS', quantity: 7, model: 'large' }),
          ];
          await producer.withTenant(tenantId, async (tx) => {
            for (const event of events) await writeEvent(tx, USAGE_TOPIC, event);
          });
          // A producer's transaction that rolls back announces nothing.
          await assert.rejects(
            producer.withTenant(tenantId, async (tx) => {
              await writeEvent(tx, USAGE_TOPIC, usageEvent(tenantId, { metric: 'PROMPT_TOKENS', quantity: 1_000_000 }));
              throw new Error('rolled back');
            }),
            /^Error: rolled back$/,
          );
          // The same events again, straight on the bus: a producer retrying, the broker redelivering.
          for (const event of [...events, events[0]!]) await bus.publish(USAGE_TOPIC, event);
          relay.notify();

          const summary = await waitFor(() => usageOf(reader(tenantId), 'MODEL'), 'the events', { ...LEDGER_WAIT, until: (u) => total(u.totals, 'COMPLETION_TOKENS') === 7 });
          await sleep(200); // and nothing more arrives
          const settled = await usageOf(reader(tenantId), 'MODEL');
          assert.deepEqual([total(settled.totals, 'PROMPT_TOKENS'), total(settled.totals, 'COMPLETION_TOKENS')], [150, 7]);
          assert.deepEqual(
            settled.groups.map((g) => [g.key, total(g.totals, 'PROMPT_TOKENS'), total(g.totals, 'COMPLETION_TOKENS')]),
            [['large', 50, 7], ['small', 100, 0]],
          );
          assert.equal(summary.groups.length, 2);
          const byMember = await usageOf(reader(tenantId), 'USER');
          assert.deepEqual(byMember.groups.map((g) => [g.key, total(g.totals, 'PROMPT_TOKENS')]), [[ada, 150], [null, 0]]);
          const byDay = await usageOf(reader(tenantId), 'DAY');
          assert.deepEqual(byDay.groups.map((g) => g.key), [new Date().toISOString().slice(0, 10)]);
        } finally {
          await relay.stop();
          await producer.close();
        }
      });

      async function storedBytesOf(principal: Principal): Promise<number> {
        const token = await principalSigner(config.INTERNAL_AUTH_SECRET!).sign({ ...principal, plan: 'TEAM' });
        const query = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Tenant { quota { storageBytes } } } }`;
        const { body } = await postGraphQL<{ _entities: { quota: { storageBytes: number } }[] }>(
          usage.url,
          query,
          { r: [{ __typename: 'Tenant', id: principal.tenantId }] },
          { [PRINCIPAL_HEADER]: token },
        );
        assert.equal(body.errors, undefined, JSON.stringify(body.errors));
        return body.data!._entities[0]!.quota.storageBytes;
      }

      interface QuotaOf {
        tokensToday: number;
        tokensThisMonth: number;
        storageBytes: number;
        planLimits: { concurrentRuns: number };
        limits: { concurrentRuns: number };
      }
      async function quotaOf(principal: Principal, plan: NonNullable<Principal['plan']> = 'TEAM'): Promise<QuotaOf> {
        const token = await principalSigner(config.INTERNAL_AUTH_SECRET!).sign({ ...principal, plan });
        const query = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Tenant { quota {
          tokensToday tokensThisMonth storageBytes planLimits { concurrentRuns } limits { concurrentRuns } } } } }`;
        const { body } = await postGraphQL<{ _entities: { quota: QuotaOf }[] }>(
          usage.url,
          query,
          { r: [{ __typename: 'Tenant', id: principal.tenantId }] },
          { [PRINCIPAL_HEADER]: token },
        );
        assert.equal(body.errors, undefined, JSON.stringify(body.errors));
        return body.data!._entities[0]!.quota;
      }

      test("stored bytes: a document's bytes and their release (−N) sum to nothing; a duplicated release counts once", async () => {
        const tenantId = randomUUID();
        const member = randomUUID();
        const deleted = usageEvent(tenantId, { metric: 'STORAGE_BYTES', quantity: 4096, userId: member });
        const kept = usageEvent(tenantId, { metric: 'STORAGE_BYTES', quantity: 10_000, userId: member });
        for (const event of [deleted, kept]) await bus.publish(USAGE_TOPIC, event);
        await waitFor(() => storedBytesOf(reader(tenantId)), 'both documents counted', { ...LEDGER_WAIT, until: (bytes) => bytes === 14_096 });

        const released = usageEvent(tenantId, { metric: 'STORAGE_BYTES', quantity: -4096, userId: member });
        for (const event of [released, released, { ...released, occurredAt: new Date().toISOString() }]) await bus.publish(USAGE_TOPIC, event);
        await waitFor(() => storedBytesOf(reader(tenantId)), 'the release', { ...LEDGER_WAIT, until: (bytes) => bytes !== 14_096 });
        await sleep(200); // and no second release arrives
        assert.equal(await storedBytesOf(reader(tenantId)), 10_000);
        const byMember = await usageOf(reader(tenantId), 'USER');
        assert.equal(total(byMember.totals, 'STORAGE_BYTES'), 10_000);
        assert.deepEqual(byMember.groups.map((g) => [g.key, total(g.totals, 'STORAGE_BYTES')]), [[member, 10_000]]);

        // A pair alone: nothing stored.
        const alone = randomUUID();
        await bus.publish(USAGE_TOPIC, usageEvent(alone, { metric: 'STORAGE_BYTES', quantity: 512 }));
        await waitFor(() => storedBytesOf(reader(alone)), 'the count', { ...LEDGER_WAIT, until: (bytes) => bytes === 512 });
        const release = usageEvent(alone, { metric: 'STORAGE_BYTES', quantity: -512 });
        for (const event of [release, release]) await bus.publish(USAGE_TOPIC, event);
        await waitFor(() => usageOf(reader(alone)), 'the release', { ...LEDGER_WAIT, until: (u) => total(u.totals, 'STORAGE_BYTES') !== 512 });
        await sleep(200);
        assert.equal(total((await usageOf(reader(alone))).totals, 'STORAGE_BYTES'), 0);
        assert.equal(await storedBytesOf(reader(alone)), 0);
      });

      test("workflow and agent runs' TOOL_CALLS and RUNS count once per event id, without a model, in every total and group", async () => {
        const tenantId = randomUUID();
        const member = randomUUID();
        const events = [
          usageEvent(tenantId, { metric: 'RUNS', quantity: 1, userId: member }),
          usageEvent(tenantId, { metric: 'TOOL_CALLS', quantity: 3, userId: member, model: null }),
          usageEvent(tenantId, { metric: 'RUNS', quantity: 1 }),
          usageEvent(tenantId, { metric: 'TOOL_CALLS', quantity: 2 }),
        ];
        // Each once, then again (a producer retrying), and one redelivered later with another timestamp: same ids.
        for (const event of [...events, ...events, { ...events[1]!, occurredAt: new Date().toISOString() }]) await bus.publish(USAGE_TOPIC, event);
        await waitFor(() => usageOf(reader(tenantId)), 'the events', {
          ...LEDGER_WAIT,
          until: (u) => total(u.totals, 'TOOL_CALLS') === 5 && total(u.totals, 'RUNS') === 2,
        });
        await sleep(200); // and nothing more arrives

        const settled = await usageOf(reader(tenantId), 'USER');
        assert.deepEqual(
          settled.totals,
          USAGE_METRICS.map((metric) => ({ metric, quantity: ({ TOOL_CALLS: 5, RUNS: 2 } as Record<string, number>)[metric] ?? 0 })),
          'one total for every metric, the new ones among them',
        );
        assert.deepEqual(settled.groups.map((g) => [g.key, total(g.totals, 'TOOL_CALLS'), total(g.totals, 'RUNS')]), [[member, 3, 1], [null, 2, 1]]);
        const byModel = await usageOf(reader(tenantId), 'MODEL');
        assert.deepEqual(byModel.groups.map((g) => [g.key, total(g.totals, 'TOOL_CALLS'), total(g.totals, 'RUNS')]), [[null, 5, 2]], 'no model');
        const quota = await quotaOf(reader(tenantId));
        assert.deepEqual([quota.tokensToday, quota.tokensThisMonth, quota.storageBytes], [0, 0, 0], 'tool calls and runs are neither tokens nor bytes');
      });

      test("recordUsage cannot write TOOL_CALLS or RUNS: meters named after them are refused and the ledger stays as it was", async () => {
        const tenantId = randomUUID();
        const service: Principal = { tenantId, roles: [], scopes: ['usage:write'], permissions: ['usage:read'], isolation: 'SHARED' };
        const token = await principalSigner(config.INTERNAL_AUTH_SECRET!).sign(service);
        const record = (meter: string, idempotencyKey: string) =>
          postGraphQL<{ recordUsage: { meter: string } | null }>(
            usage.url,
            `mutation($u: RecordUsageInput!) { recordUsage(input: $u) { meter } }`,
            { u: { meter, quantity: 1_000_000, idempotencyKey } },
            { [PRINCIPAL_HEADER]: token },
          );
        for (const meter of ['tool_calls', 'runs', 'TOOL_CALLS', 'RUNS']) {
          const { body } = await record(meter, `${meter}-named`);
          assert.equal(body.data?.recordUsage ?? null, null, meter);
          assert.deepEqual([body.errors?.[0]?.extensions?.code, body.errors?.[0]?.extensions?.field], ['BAD_USER_INPUT', 'meter'], meter);
        }
        // A meter of the tenant's own naming is its own business, apart from the ledger.
        const { body: own } = await record('agents.tool_calls', 'own');
        assert.equal(own.errors, undefined, JSON.stringify(own.errors));
        const summary = await usageOf(service);
        assert.deepEqual([total(summary.totals, 'TOOL_CALLS'), total(summary.totals, 'RUNS')], [0, 0]);
      });

      test("a plan's concurrentRuns is in its limits: the figure in force, as no override lowers it", async () => {
        for (const plan of ['FREE', 'TEAM', 'ENTERPRISE'] as const) {
          const quota = await quotaOf(reader(randomUUID()), plan);
          assert.deepEqual([quota.planLimits.concurrentRuns, quota.limits.concurrentRuns], [PLAN_QUOTAS[plan].concurrentRuns, PLAN_QUOTAS[plan].concurrentRuns], plan);
        }
        assert.deepEqual([PLAN_QUOTAS.FREE.concurrentRuns, PLAN_QUOTAS.TEAM.concurrentRuns, PLAN_QUOTAS.ENTERPRISE.concurrentRuns], [2, 20, 200]);
      });

      test("a DEDICATED tenant's usage is kept in its own schema", async () => {
        const tenantId = randomUUID();
        await bus.publish(USAGE_TOPIC, usageEvent(tenantId, { metric: 'STORAGE_BYTES', quantity: 4096, isolation: 'DEDICATED' }));
        const own = await waitFor(() => usageOf(reader(tenantId, 'DEDICATED')), 'the event', { ...LEDGER_WAIT, until: (u) => total(u.totals, 'STORAGE_BYTES') === 4096 });
        assert.equal(total(own.totals, 'STORAGE_BYTES'), 4096);
        assert.equal(total((await usageOf(reader(tenantId))).totals, 'STORAGE_BYTES'), 0, 'nothing in the shared schema');
      });
    });
  }
}

for (const variant of databaseVariants()) {
  describe(`negative usage quantities, on ${variant.name}`, { skip: variant.skip }, () => {
    test('only STORAGE_BYTES may be negative: a negative count of anything else is refused, by the payload and by the ledger', async () => {
      const tenantId = randomUUID();
      for (const metric of USAGE_METRICS.filter((m) => !SIGNED_USAGE_METRICS.includes(m))) {
        assert.throws(() => usageEvent(tenantId, { metric, quantity: -1 }), /only STORAGE_BYTES may be negative/);
      }
      assert.equal(usageEvent(tenantId, { metric: 'STORAGE_BYTES', quantity: -1 }).payload.quantity, -1);
      const db = await openTestDatabase(variant, 'usage');
      try {
        await db.migrate(fileURLToPath(new URL('../migrations/', import.meta.url)));
        const insert = (metric: string, quantity: number) =>
          db.withTenant(tenantId, (tx) =>
            tx.query(
              `INSERT INTO usage_events (id, tenant_id, metric, quantity, idempotency_key, occurred_at) VALUES ($1, $2, $3, $4, $5, now())`,
              [randomUUID(), tenantId, metric, quantity, randomUUID()],
            ),
          );
        await insert('STORAGE_BYTES', -100);
        await assert.rejects(insert('REQUESTS', -1), /usage_events_quantity_check/);
        // The ledger takes every metric there is (TOOL_CALLS and RUNS since 0006), counts only, and nothing else.
        for (const metric of USAGE_METRICS) await insert(metric, 1);
        await assert.rejects(insert('TOOL_CALLS', -1), /usage_events_quantity_check/);
        await assert.rejects(insert('RUNS', -1), /usage_events_quantity_check/);
        await assert.rejects(insert('WIDGETS', 1), /usage_events_metric_check/);
      } finally {
        await db.close();
      }
    });
  });
}

describe('the usage service killed mid-stream and started again loses no event and counts none twice', {
  skip: !(AMQP_URL && process.env.DATABASE_URL) && 'needs AMQP_URL and DATABASE_URL',
}, () => {
  const variant = databaseVariants()[1]!;
  const namespace = `test-${randomBytes(4).toString('hex')}`;
  let config: Config;
  let bus: Bus;
  let child: ChildProcess | undefined;

  before(async () => {
    config = testConfig(variant, { BUS_NAMESPACE: namespace, AMQP_URL: AMQP_URL!, USAGE_PORT: String(await freePort()) });
    bus = await openConfiguredBus(config, createLogger('bus', 'silent'));
    // The service's durable queue exists before the first event, as it would in a running deployment.
    await (await bus.subscribe(USAGE_TOPIC, 'usage-ledger', async () => {})).close();
  });
  after(async () => {
    child?.kill('SIGKILL');
    await bus?.close();
    await deleteNamespace(AMQP_URL!, namespace);
    await dropSchemas(variant.url!, config.DATABASE_SCHEMA_PREFIX!);
  });

  function startUsageService(): ChildProcess {
    const env = Object.fromEntries(Object.entries(config).flatMap(([key, value]) => (typeof value === 'string' || typeof value === 'number' ? [[key, String(value)]] : [])));
    return spawn(process.execPath, ['--import', 'tsx', 'scripts/serve.ts', 'usage'], {
      cwd: new URL('../../../', import.meta.url).pathname,
      env: { PATH: process.env.PATH, ...env, LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    });
  }

  test('3,000 events, the consumer killed part way', async () => {
    const tenantId = randomUUID();
    const client = new pg.Client({ connectionString: variant.url });
    await client.connect();
    const ledger = `${config.DATABASE_SCHEMA_PREFIX}_usage.usage_events`;
    const counted = async () => {
      const result = await client.query(`SELECT count(*)::int AS n, coalesce(sum(quantity), 0)::float AS q FROM ${ledger} WHERE tenant_id = $1`, [tenantId]).catch((error: { code?: string }) => {
        // Until the service's first start has migrated its schema, the ledger is not there: nothing counted yet.
        if (error.code === '42P01') return { rows: [{ n: 0, q: 0 }] };
        throw error;
      });
      return result.rows[0] as { n: number; q: number };
    };
    try {
      const events = Array.from({ length: 3000 }, (_, i) => usageEvent(tenantId, { metric: 'REQUESTS', quantity: 1 + (i % 3) }));
      for (const event of events) await bus.publish(USAGE_TOPIC, event);
      for (const event of events.slice(0, 100)) await bus.publish(USAGE_TOPIC, event); // duplicates too

      child = startUsageService();
      const atKill = await waitFor(counted, 'the first events to be counted', { ...LEDGER_WAIT, timeoutMs: 60_000, until: ({ n }) => n >= 300 });
      child.kill('SIGKILL');
      await new Promise((resolve) => child!.once('exit', resolve));
      assert.ok(atKill.n < events.length, `killed mid-stream (${atKill.n} of ${events.length} counted)`);

      child = startUsageService();
      const expected = events.reduce((sum, event) => sum + (event.payload.quantity as number), 0);
      const final = await waitFor(counted, 'every event', { ...LEDGER_WAIT, timeoutMs: 60_000, until: ({ n }) => n === events.length });
      await sleep(500);
      assert.deepEqual(await counted(), { n: events.length, q: expected });
      assert.equal(final.n, events.length);
    } finally {
      await client.end();
    }
  });
});
