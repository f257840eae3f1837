import { pino } from 'pino';
import type { Config } from '../config/environment.ts';
import type { Logger } from '../logger.ts';
import { definedOnly } from '../options.ts';
import { inProcessBus } from './memory.ts';
import { rabbitBus } from './rabbitmq.ts';
import { currentTraceContext, extractTraceContext, SpanKind, traced } from '../telemetry.ts';
import { DEFAULT_BUS_SETTINGS, type Bus, type BusEvent, type BusOptions } from './types.ts';

export type { Bus, BusEvent, BusOptions, EventHandler, Subscription } from './types.ts';
export { queueName } from './types.ts';

/** RabbitMQ when `amqpUrl` is given, otherwise a bus inside this process with the same semantics. */
export function openBus(options: BusOptions = {}): Promise<Bus> {
  const { amqpUrl, log, ...rest } = options;
  const settings = { ...DEFAULT_BUS_SETTINGS, ...definedOnly(rest), log: log ?? pino({ level: 'silent' }) };
  const opened = amqpUrl ? rabbitBus(amqpUrl, settings) : Promise.resolve(inProcessBus(settings));
  return opened.then((bus) => tracedBus(bus, amqpUrl ? 'rabbitmq' : 'in-process'));
}

/** The bus configuration names: RabbitMQ at AMQP_URL (or in-process), exchange and queues under BUS_NAMESPACE. */
export function openConfiguredBus(config: Config, log: Logger): Promise<Bus> {
  const namespace = config.BUS_NAMESPACE;
  return openBus({ amqpUrl: config.AMQP_URL, exchange: `${namespace}.events`, queuePrefix: `${namespace}.`, log });
}

/**
 * While tracing is on, publishing is a producer span (the child of the work that wrote the event) and each
 * delivery a consumer span, the child of its publish: one trace from a request to the events it caused.
 */
function tracedBus(bus: Bus, system: string): Bus {
  const attributes = (topic: string) => ({ 'messaging.system': system, 'messaging.destination.name': topic });
  return {
    publish: (topic, event) =>
      traced(`publish ${topic}`, { kind: SpanKind.PRODUCER, attributes: attributes(topic), parent: parentOf(event) }, () => {
        const traceContext = currentTraceContext();
        return bus.publish(topic, traceContext ? { ...event, traceContext } : event);
      }),
    subscribe: (topic, group, handler) =>
      bus.subscribe(topic, group, (event) =>
        traced(`process ${topic}`, { kind: SpanKind.CONSUMER, attributes: { ...attributes(topic), 'messaging.consumer.group.name': group }, parent: parentOf(event) }, () =>
          handler(event),
        ),
      ),
    close: () => bus.close(),
  };
}

const parentOf = (event: BusEvent) => (event.traceContext ? extractTraceContext(event.traceContext) : undefined);
