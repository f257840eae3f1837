import type { Channel, ConsumeMessage, RecoveringChannelModel } from 'amqplib';
import type { Publisher } from './rabbitmq.ts';
import { queueName, type BusEvent, type BusSettings, type EventHandler, type Subscription } from './types.ts';

/** How often the handlers of this group failed on the message so far; carried by the retried copy. */
const FAILURES_HEADER = 'x-jarvis-failures';

interface SubscriptionSpec {
  connection: RecoveringChannelModel;
  publisher: Publisher;
  settings: BusSettings;
  topic: string;
  group: string;
  handler: EventHandler;
}

interface Attached {
  channel: Channel;
  consumerTag: string;
}

/**
 * The queues of one group and topic: `<queue>` bound to the exchange; `<queue>.retry`, where a failed
 * message waits out its expiration (`retryDelayMs`) before RabbitMQ dead-letters it back into `<queue>`;
 * and `<queue>.dead`, where it stays after `maxAttempts` failures for someone to look at. Handing a failed
 * message on (instead of a nack that requeues it) is what makes the delay and the count possible.
 */
async function declareQueues(channel: Channel, settings: BusSettings, queue: string, topic: string): Promise<void> {
  await channel.assertExchange(settings.exchange, 'topic', { durable: true });
  await channel.assertQueue(queue, { durable: true });
  await channel.bindQueue(queue, settings.exchange, topic);
  await channel.assertQueue(`${queue}.retry`, {
    durable: true,
    arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
  });
  await channel.assertQueue(`${queue}.dead`, { durable: true });
}

/**
 * Consumes a group's queue on a channel of its own (prefetch is per channel). Resolves once consuming, so an
 * event published afterwards is queued for the group. Channels that close under it (a lost connection, the
 * broker cancelling the consumer) are replaced until the subscription is closed.
 */
export async function rabbitSubscription(spec: SubscriptionSpec): Promise<Subscription> {
  const { connection, publisher, settings, topic, handler } = spec;
  const { log } = settings;
  const queue = queueName(settings, topic, spec.group);
  const running = new Set<Promise<void>>();
  let attached: Attached | undefined;
  let closing = false;

  async function attach(): Promise<void> {
    const channel = await connection.createChannel();
    try {
      channel.on('error', (error: Error) => log.warn({ err: error, queue }, 'AMQP consumer channel error'));
      channel.on('close', () => onChannelClosed(channel));
      await channel.prefetch(settings.prefetch);
      await declareQueues(channel, settings, queue, topic);
      const { consumerTag } = await channel.consume(queue, (message) => onMessage(channel, message));
      attached = { channel, consumerTag };
    } catch (error) {
      await channel.close().catch(() => {});
      throw error;
    }
    if (closing) await detach();
  }

  function onChannelClosed(channel: Channel): void {
    if (closing || attached?.channel !== channel) return;
    attached = undefined;
    log.warn({ queue }, 'AMQP consumer channel closed; consuming again');
    void reattach();
  }

  async function reattach(): Promise<void> {
    while (!closing) {
      try {
        await attach();
        return;
      } catch (error) {
        if (closing) return;
        log.warn({ err: error, queue }, 'could not consume again; retrying');
        await sleep(settings.retryDelayMs);
      }
    }
  }

  function onMessage(channel: Channel, message: ConsumeMessage | null): void {
    if (!message) {
      // The broker cancelled the consumer (its queue was deleted): a new channel declares it again.
      void channel.close().catch(() => {});
      return;
    }
    if (closing) return settle(channel, message, 'requeue');
    const delivered = deliver(channel, message).finally(() => running.delete(delivered));
    running.add(delivered);
  }

  async function deliver(channel: Channel, message: ConsumeMessage): Promise<void> {
    const failures = Number(message.properties.headers?.[FAILURES_HEADER] ?? 0);
    let event: BusEvent;
    try {
      event = JSON.parse(message.content.toString('utf8')) as BusEvent;
    } catch (error) {
      return handOn(channel, message, settings.maxAttempts, error);
    }
    try {
      await handler(event);
    } catch (error) {
      return handOn(channel, message, failures + 1, error);
    }
    settle(channel, message, 'ack');
  }

  /** Republishes a failed message to the retry or dead-letter queue, confirmed, and only then acks it. */
  async function handOn(channel: Channel, message: ConsumeMessage, failures: number, error: unknown): Promise<void> {
    const dead = failures >= settings.maxAttempts;
    const context = { err: error, queue, eventId: message.properties.messageId, attempts: failures };
    if (dead) log.error(context, 'event dead-lettered after its last attempt');
    else log.warn(context, 'event handler failed; retrying');
    try {
      await publisher.send('', dead ? `${queue}.dead` : `${queue}.retry`, message.content, {
        messageId: message.properties.messageId,
        type: message.properties.type,
        headers: { [FAILURES_HEADER]: failures },
        ...(dead ? {} : { expiration: String(settings.retryDelayMs) }),
      });
      settle(channel, message, 'ack');
    } catch (publishError) {
      log.error({ err: publishError, queue }, 'could not hand a failed event on; the broker will deliver it again');
      await sleep(settings.retryDelayMs);
      settle(channel, message, 'requeue');
    }
  }

  /** A channel that closed meanwhile has already handed its unacked messages back to the queue. */
  function settle(channel: Channel, message: ConsumeMessage, outcome: 'ack' | 'requeue'): void {
    try {
      if (outcome === 'ack') channel.ack(message);
      else channel.nack(message, false, true);
    } catch {}
  }

  async function detach(): Promise<void> {
    const current = attached;
    attached = undefined;
    if (!current) return;
    await current.channel.cancel(current.consumerTag).catch(() => {});
    await Promise.allSettled(running);
    await current.channel.close().catch(() => {});
  }

  await attach();
  return {
    async close() {
      closing = true;
      await detach();
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
