import { assertBusName, queueName, type Bus, type BusEvent, type BusSettings, type EventHandler, type Subscription } from './types.ts';

interface Delivery {
  event: BusEvent;
  failures: number;
}

interface Consumer {
  handler: EventHandler;
  running: Set<Promise<void>>;
}

/** One group's queue for one topic: it outlives its consumers, as a durable queue does. */
interface GroupQueue {
  name: string;
  pending: Delivery[];
  consumers: Consumer[];
  /** Where the round-robin over consumers resumes. */
  turn: number;
}

/**
 * The bus inside one process, with RabbitMQ's semantics: every group's queue gets its own copy of each event,
 * a group's consumers compete for them, a failed event comes back after `retryDelayMs` and is dead-lettered
 * (logged at error level with the whole event) after `maxAttempts`. Nothing is lost while the process lives.
 */
export function inProcessBus(settings: BusSettings): Bus {
  const queuesByTopic = new Map<string, Map<string, GroupQueue>>();
  const subscriptions = new Set<Subscription>();
  const retryTimers = new Set<NodeJS.Timeout>();
  let closed = false;

  function groupQueue(topic: string, group: string): GroupQueue {
    const groups = queuesByTopic.get(topic) ?? new Map<string, GroupQueue>();
    queuesByTopic.set(topic, groups);
    let queue = groups.get(group);
    if (!queue) {
      queue = { name: queueName(settings, topic, group), pending: [], consumers: [], turn: 0 };
      groups.set(group, queue);
    }
    return queue;
  }

  function dispatch(queue: GroupQueue): void {
    while (queue.pending.length > 0) {
      const consumer = nextFreeConsumer(queue);
      if (!consumer) return;
      handle(queue, consumer, queue.pending.shift()!);
    }
  }

  function nextFreeConsumer(queue: GroupQueue): Consumer | undefined {
    const count = queue.consumers.length;
    for (let i = 0; i < count; i++) {
      const index = (queue.turn + i) % count;
      const consumer = queue.consumers[index]!;
      if (consumer.running.size < settings.prefetch) {
        queue.turn = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  function handle(queue: GroupQueue, consumer: Consumer, delivery: Delivery): void {
    // Each handler gets its own copy, as it would from a broker: one cannot change what another sees.
    const handled: Promise<void> = Promise.resolve()
      .then(() => consumer.handler(structuredClone(delivery.event)))
      .then(
        () => {},
        (error: unknown) => handleFailure(queue, delivery, error),
      )
      .finally(() => {
        consumer.running.delete(handled);
        dispatch(queue);
      });
    consumer.running.add(handled);
  }

  function handleFailure(queue: GroupQueue, delivery: Delivery, error: unknown): void {
    const failures = delivery.failures + 1;
    const context = { err: error, queue: queue.name, eventId: delivery.event.id, attempts: failures };
    if (failures >= settings.maxAttempts) {
      settings.log.error({ ...context, event: delivery.event }, 'event dead-lettered after its last attempt');
      return;
    }
    settings.log.warn(context, 'event handler failed; retrying');
    const timer = setTimeout(() => {
      retryTimers.delete(timer);
      queue.pending.push({ event: delivery.event, failures });
      dispatch(queue);
    }, settings.retryDelayMs);
    retryTimers.add(timer);
  }

  async function publish(topic: string, event: BusEvent): Promise<void> {
    if (closed) throw new Error('the bus is closed');
    assertBusName('topic', topic);
    for (const queue of queuesByTopic.get(topic)?.values() ?? []) {
      queue.pending.push({ event: structuredClone(event), failures: 0 });
      queueMicrotask(() => dispatch(queue));
    }
  }

  async function subscribe(topic: string, group: string, handler: EventHandler): Promise<Subscription> {
    if (closed) throw new Error('the bus is closed');
    assertBusName('topic', topic);
    assertBusName('group', group);
    const queue = groupQueue(topic, group);
    const consumer: Consumer = { handler, running: new Set() };
    queue.consumers.push(consumer);
    queueMicrotask(() => dispatch(queue));
    const subscription: Subscription = {
      async close() {
        subscriptions.delete(subscription);
        queue.consumers = queue.consumers.filter((c) => c !== consumer);
        await Promise.allSettled(consumer.running);
      },
    };
    subscriptions.add(subscription);
    return subscription;
  }

  return {
    publish,
    subscribe,
    async close() {
      closed = true;
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
      for (const timer of retryTimers) clearTimeout(timer);
    },
  };
}
