import { connect, type ConfirmChannel, type Options, type RecoveringChannelModel } from 'amqplib';
import { rabbitSubscription } from './rabbitmq-consumer.ts';
import { assertBusName, type Bus, type BusSettings, type Subscription } from './types.ts';

export type Publisher = ReturnType<typeof confirmPublisher>;

/**
 * The bus over RabbitMQ: events go to a durable topic exchange under their topic; each subscription's
 * group has a durable queue bound to it. A lost connection is re-established (backing off up to 5 s) and
 * every subscription consumes again; a broker that is unreachable at start fails `openBus` after a few tries.
 */
export async function rabbitBus(url: string, settings: BusSettings): Promise<Bus> {
  const connection = await connect(url, { recovery: { initialMaxRetries: 3, maxDelay: 5_000 } });
  reportConnectionEvents(connection, settings);
  const publisher = confirmPublisher(connection, settings);
  const subscriptions = new Set<Subscription>();
  let closed = false;

  return {
    async publish(topic, event) {
      if (closed) throw new Error('the bus is closed');
      assertBusName('topic', topic);
      await publisher.send(settings.exchange, topic, Buffer.from(JSON.stringify(event)), {
        messageId: event.id,
        type: event.type,
      });
    },
    async subscribe(topic, group, handler) {
      if (closed) throw new Error('the bus is closed');
      assertBusName('topic', topic);
      assertBusName('group', group);
      const subscription = await rabbitSubscription({ connection, publisher, settings, topic, group, handler });
      subscriptions.add(subscription);
      return {
        close: async () => {
          subscriptions.delete(subscription);
          await subscription.close();
        },
      };
    },
    async close() {
      closed = true;
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
      await publisher.close();
      await connection.close();
    },
  };
}

/** Connection trouble is logged, never thrown: an unhandled 'error' event would end the process. */
function reportConnectionEvents(connection: RecoveringChannelModel, { log }: BusSettings): void {
  connection.on('error', (error: Error) => log.warn({ err: error }, 'AMQP connection error'));
  connection.on('disconnect', (error: Error) => log.warn({ err: error }, 'AMQP connection lost; reconnecting'));
  connection.on('connect', () => log.info('AMQP connection re-established'));
  connection.on('reconnect-failed', (error: Error) => log.error({ err: error }, 'AMQP reconnection abandoned'));
  connection.on('blocked', (reason: string) => log.warn({ reason }, 'AMQP broker blocked publishing'));
}

/**
 * One confirm channel shared by all publishes, opened on first use and again after it closes. `send`
 * resolves when the broker confirms the message, and rejects on a nack, a closed channel or after
 * `publishTimeoutMs` (which also bounds waiting for a reconnection), so the caller can publish again.
 */
function confirmPublisher(connection: RecoveringChannelModel, settings: BusSettings) {
  let channel: Promise<ConfirmChannel> | undefined;

  function openChannel(): Promise<ConfirmChannel> {
    const opening = connection.createConfirmChannel().then(async (opened) => {
      opened.on('error', (error: Error) => settings.log.warn({ err: error }, 'AMQP publishing channel error'));
      opened.on('close', () => {
        if (channel === opening) channel = undefined;
      });
      await opened.assertExchange(settings.exchange, 'topic', { durable: true });
      return opened;
    });
    opening.catch(() => {
      if (channel === opening) channel = undefined;
    });
    return opening;
  }

  async function publishConfirmed(exchange: string, routingKey: string, content: Buffer, options: Options.Publish) {
    channel ??= openChannel();
    const opened = await channel;
    await new Promise<void>((resolve, reject) => {
      opened.publish(exchange, routingKey, content, { persistent: true, contentType: 'application/json', ...options }, (error) =>
        error ? reject(error instanceof Error ? error : new Error('the broker refused the message')) : resolve(),
      );
    });
  }

  return {
    send: (exchange: string, routingKey: string, content: Buffer, options: Options.Publish) =>
      withTimeout(publishConfirmed(exchange, routingKey, content, options), settings.publishTimeoutMs, 'publishing was not confirmed'),
    async close() {
      const open = channel;
      channel = undefined;
      await open?.then((opened) => opened.close()).catch(() => {});
    },
  };
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
