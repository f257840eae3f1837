import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect as connectTcp, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { after, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect, type Channel } from 'amqplib';
import { pino } from 'pino';
import { openBus, queueName, type Bus, type BusEvent, type BusOptions } from '@jarvis/platform/bus';
import { busVariants, waitFor } from '@jarvis/platform/testing';

function newEvent(payload: Record<string, unknown> = {}): BusEvent {
  return { id: randomUUID(), type: 'test.happened', tenantId: randomUUID(), occurredAt: new Date().toISOString(), payload };
}

const sorted = (values: string[]) => [...values].sort();

function capturedLog() {
  const entries: Array<{ msg: string; eventId?: string }> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void entries.push(JSON.parse(line)) });
  return { log, entries };
}

/**
 * The buses of one suite: an exchange and queue prefix no other run uses, every bus closed after its test,
 * and (on RabbitMQ) every queue and the exchange deleted after the suite.
 */
function testBuses(amqpUrl: string | undefined) {
  const run = randomBytes(4).toString('hex');
  const names = { exchange: `test.${run}.events`, queuePrefix: `test.${run}.` };
  const queues = new Set<string>();
  const queueOf = (topic: string, group: string) => queueName(names, topic, group);

  async function open(t: TestContext, options: BusOptions = {}): Promise<Bus> {
    const bus = await openBus({ amqpUrl, ...names, retryDelayMs: 30, maxAttempts: 3, ...options });
    t.after(() => bus.close());
    return {
      ...bus,
      subscribe(topic, group, handler) {
        queues.add(queueOf(topic, group));
        return bus.subscribe(topic, group, handler);
      },
    };
  }

  async function withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
    const connection = await connect(amqpUrl!);
    try {
      return await work(await connection.createChannel());
    } finally {
      await connection.close();
    }
  }

  return {
    names,
    open,
    queueOf,
    track: (topic: string, group: string) => queues.add(queueOf(topic, group)),
    messagesIn: (queue: string) => withChannel(async (channel) => (await channel.checkQueue(queue)).messageCount),
    async cleanup() {
      if (!amqpUrl) return;
      await withChannel(async (channel) => {
        for (const queue of queues) {
          for (const suffix of ['', '.retry', '.dead']) await channel.deleteQueue(`${queue}${suffix}`);
        }
        await channel.deleteExchange(names.exchange);
      });
    },
  };
}

for (const variant of busVariants()) {
  describe(`bus on ${variant.name}`, { skip: variant.skip }, () => {
    const buses = testBuses(variant.url);
    after(() => buses.cleanup());

    test('every group gets each event of its topic once, and nothing of other topics', async (t) => {
      const bus = await buses.open(t);
      const billing: BusEvent[] = [];
      const audit: string[] = [];
      // Collected, not asserted in the handler: the bus catches a handler's error and retries the event.
      const cancelled: string[] = [];
      await bus.subscribe('orders.placed', 'billing', async (event) => void billing.push(event));
      await bus.subscribe('orders.placed', 'audit', async (event) => void audit.push(event.id));
      await bus.subscribe('orders.cancelled', 'billing', async (event) => void cancelled.push(event.id));

      const cancellation = newEvent();
      await bus.publish('orders.cancelled', cancellation);
      const events = Array.from({ length: 10 }, (_, i) => newEvent({ line: i }));
      for (const event of events) await bus.publish('orders.placed', event);
      await waitFor(() => billing.length >= 10 && audit.length >= 10 && cancelled.length >= 1, 'every group to get every event of its topic');
      await sleep(100);

      const byId = (a: BusEvent, b: BusEvent) => a.id.localeCompare(b.id);
      assert.deepEqual([...billing].sort(byId), [...events].sort(byId), 'each event once, as published');
      assert.deepEqual(sorted(audit), sorted(events.map((e) => e.id)));
      assert.deepEqual(cancelled, [cancellation.id], "the other topic's event, and none of this one");
    });

    test("two consumers of one group share the group's events, each handled once", async (t) => {
      const bus = await buses.open(t, { prefetch: 1 });
      const first: string[] = [];
      const second: string[] = [];
      for (const handled of [first, second]) {
        await bus.subscribe('jobs.queued', 'workers', async (event) => {
          await sleep(5);
          handled.push(event.id);
        });
      }
      const events = Array.from({ length: 20 }, () => newEvent());
      for (const event of events) await bus.publish('jobs.queued', event);
      await waitFor(() => first.length + second.length >= 20, 'all jobs handled');
      await sleep(100);

      assert.deepEqual(sorted([...first, ...second]), sorted(events.map((e) => e.id)));
      assert.ok(first.length > 0 && second.length > 0, `both consumers worked: ${first.length} + ${second.length}`);
    });

    test('a handler that throws gets the event again after the retry delay, without holding up other events', async (t) => {
      const bus = await buses.open(t, { retryDelayMs: 100, maxAttempts: 5 });
      const flaky = newEvent();
      const fine = newEvent();
      const attempts: number[] = [];
      let fineHandledAt = 0;
      await bus.subscribe('mail.send', 'mailer', async (event) => {
        if (event.id === fine.id) {
          fineHandledAt = Date.now();
          return;
        }
        attempts.push(Date.now());
        if (attempts.length < 3) throw new Error('mail server down');
      });
      await bus.publish('mail.send', flaky);
      await bus.publish('mail.send', fine);
      await waitFor(() => attempts.length === 3, 'the third attempt');
      await sleep(250);

      assert.equal(attempts.length, 3, 'handled once it succeeded, not again');
      assert.ok(fineHandledAt > 0 && fineHandledAt < attempts[1]!, 'the next event did not wait for the retry');
      const gaps = [attempts[1]! - attempts[0]!, attempts[2]! - attempts[1]!];
      assert.ok(gaps.every((gap) => gap >= 90), `retried after ${gaps.join(' and ')} ms`);
    });

    test('a poison event is dead-lettered after maxAttempts and not delivered again', async (t) => {
      const { log, entries } = capturedLog();
      const bus = await buses.open(t, { log, maxAttempts: 3, retryDelayMs: 30 });
      const poison = newEvent();
      let attempts = 0;
      await bus.subscribe('reports.render', 'renderer', async () => {
        attempts++;
        throw new Error('cannot render');
      });
      await bus.publish('reports.render', poison);
      await waitFor(() => attempts === 3, 'three attempts');
      await sleep(200);

      assert.equal(attempts, 3);
      const deadLettered = entries.filter((entry) => entry.msg === 'event dead-lettered after its last attempt');
      assert.deepEqual(deadLettered.map((entry) => entry.eventId), [poison.id]);
      if (variant.url) {
        assert.equal(await buses.messagesIn(`${buses.queueOf('reports.render', 'renderer')}.dead`), 1);
        assert.equal(await buses.messagesIn(buses.queueOf('reports.render', 'renderer')), 0);
      }
    });

    test('at most `prefetch` handlers of a subscription run at once', async (t) => {
      const bus = await buses.open(t, { prefetch: 2 });
      let running = 0;
      let most = 0;
      let done = 0;
      await bus.subscribe('images.resize', 'resizer', async () => {
        most = Math.max(most, ++running);
        await sleep(20);
        running--;
        done++;
      });
      for (let i = 0; i < 8; i++) await bus.publish('images.resize', newEvent());
      await waitFor(() => done === 8, 'all resized');
      assert.equal(most, 2);
    });

    test('a subscription keeps its queue while no consumer is attached', async (t) => {
      const bus = await buses.open(t);
      await (await bus.subscribe('invoices.issued', 'ledger', async () => {})).close();
      const events = Array.from({ length: 3 }, () => newEvent());
      for (const event of events) await bus.publish('invoices.issued', event);

      const seen: string[] = [];
      await bus.subscribe('invoices.issued', 'ledger', async (event) => void seen.push(event.id));
      await waitFor(() => seen.length === 3, 'the events published meanwhile');
      assert.deepEqual(sorted(seen), sorted(events.map((e) => e.id)));
    });

    test('closing a subscription waits for its running handlers, whose events count as handled', async (t) => {
      const bus = await buses.open(t);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let started = false;
      const handled: string[] = [];
      const subscription = await bus.subscribe('exports.run', 'exporter', async (event) => {
        started = true;
        await gate;
        handled.push(event.id);
      });
      const event = newEvent();
      await bus.publish('exports.run', event);
      await waitFor(() => started, 'the handler to start');

      let closed = false;
      const closing = subscription.close().then(() => (closed = true));
      await sleep(50);
      assert.equal(closed, false, 'close waits for the handler');
      release();
      await closing;
      assert.deepEqual(handled, [event.id]);

      const again: string[] = [];
      await bus.subscribe('exports.run', 'exporter', async (e) => void again.push(e.id));
      await sleep(150);
      assert.deepEqual(again, [], 'the finished event was acknowledged');
    });

    test('topics and groups are plain dotted words: wildcards are refused', async (t) => {
      const bus = await buses.open(t);
      await assert.rejects(bus.publish('orders.*', newEvent()), /topic "orders\.\*"/);
      await assert.rejects(bus.subscribe('orders.#', 'audit', async () => {}), /topic "orders\.#"/);
      await assert.rejects(bus.subscribe('orders.placed', 'a b', async () => {}), /group "a b"/);
    });
  });
}

const rabbitmq = busVariants()[1]!;

describe('bus on rabbitmq, across connections and processes', { skip: rabbitmq.skip }, () => {
  const amqpUrl = rabbitmq.url!;
  const buses = testBuses(amqpUrl);
  after(() => buses.cleanup());

  test('events published before a consumer connects reach its durable subscription', async (t) => {
    const declaring = await buses.open(t);
    await (await declaring.subscribe('users.invited', 'mailer', async () => {})).close();
    await declaring.close();

    const publisher = await buses.open(t);
    const events = Array.from({ length: 3 }, () => newEvent());
    for (const event of events) await publisher.publish('users.invited', event);
    await publisher.close();

    const consumer = await buses.open(t);
    const seen: string[] = [];
    await consumer.subscribe('users.invited', 'mailer', async (event) => void seen.push(event.id));
    await waitFor(() => seen.length === 3, 'the events published while no one listened');
    assert.deepEqual(sorted(seen), sorted(events.map((e) => e.id)));
  });

  test('a consumer killed mid-stream loses nothing, and an idempotent consumer counts each event once', async (t) => {
    const topic = 'usage.recorded';
    const group = 'metering';
    buses.track(topic, group);
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/slow-consumer.ts', import.meta.url))], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { ...process.env, BUS_EXCHANGE: buses.names.exchange, BUS_QUEUE_PREFIX: buses.names.queuePrefix, BUS_TOPIC: topic, BUS_GROUP: group, HANDLE_MS: '300' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => child.kill('SIGKILL'));

    // Stands for a unique-key table of event ids, written with each event's effect.
    const effects = new Set<string>();
    const handlings: string[] = [];
    const handle = (id: string) => {
      handlings.push(id);
      effects.add(id);
    };
    const childHandled: string[] = [];
    let ready = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'ready') ready = true;
      const [, id] = /^handled (.+)$/.exec(line) ?? [];
      if (id) {
        childHandled.push(id);
        handle(id);
        if (childHandled.length === 3) child.kill('SIGKILL');
      }
    });
    await waitFor(() => ready, 'the child consumer', { timeoutMs: 20_000 });

    const publisher = await buses.open(t);
    const events = Array.from({ length: 12 }, () => newEvent());
    for (const event of events) await publisher.publish(topic, event);
    await once(child, 'exit');

    const secondHandled: string[] = [];
    await publisher.subscribe(topic, group, async (event) => {
      secondHandled.push(event.id);
      handle(event.id);
    });
    await waitFor(() => effects.size === events.length, 'every event handled');
    await sleep(150);

    assert.equal(childHandled.length, 3, 'killed mid-stream');
    assert.deepEqual(sorted([...effects]), sorted(events.map((e) => e.id)), 'every event handled at least once');
    assert.ok(secondHandled.includes(childHandled.at(-1)!), 'the unacknowledged event was delivered again');
    assert.equal(handlings.length, events.length + 1, 'only that one twice');
    assert.equal(effects.size, events.length, 'counted once by event id');
  });

  test('a lost connection: publishing fails while the broker is away, then publishing and consuming resume', async (t) => {
    const proxy = await tcpProxy(new URL(amqpUrl));
    t.after(() => proxy.close());
    const viaProxy = new URL(amqpUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const { log, entries } = capturedLog();
    const bus = await buses.open(t, { amqpUrl: viaProxy.href, log, publishTimeoutMs: 300 });
    const seen: string[] = [];
    await bus.subscribe('alerts.raised', 'pager', async (event) => void seen.push(event.id));
    const before = newEvent();
    await bus.publish('alerts.raised', before);
    await waitFor(() => seen.length === 1, 'the first event');

    proxy.cut();
    await assert.rejects(bus.publish('alerts.raised', newEvent()));
    proxy.restore();
    await waitFor(() => entries.some((entry) => entry.msg === 'AMQP connection re-established'), 'reconnection');

    const afterwards = newEvent();
    await bus.publish('alerts.raised', afterwards);
    await waitFor(() => seen.includes(afterwards.id), 'the consumer to resume');
    assert.equal(seen[0], before.id);
  });

  test('an unreachable broker makes openBus fail instead of crashing the process', async () => {
    await assert.rejects(openBus({ amqpUrl: 'amqp://guest:guest@127.0.0.1:1' }), /ECONNREFUSED/);
  });
});

/** A TCP proxy to the broker that can cut every connection and refuse new ones, like a broker going away. */
async function tcpProxy(target: URL) {
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connectTcp(Number(target.port || 5672), target.hostname);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  function cut() {
    refusing = true;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  }
  return {
    port: (server.address() as { port: number }).port,
    cut,
    restore: () => void (refusing = false),
    close: () => {
      cut();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
