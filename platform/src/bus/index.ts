import { pino } from 'pino';
import { definedOnly } from '../options.ts';
import { inProcessBus } from './memory.ts';
import { rabbitBus } from './rabbitmq.ts';
import { DEFAULT_BUS_SETTINGS, type Bus, type BusOptions } from './types.ts';

export type { Bus, BusEvent, BusOptions, EventHandler, Subscription } from './types.ts';
export { queueName } from './types.ts';

/** RabbitMQ when `amqpUrl` is given, otherwise a bus inside this process with the same semantics. */
export function openBus(options: BusOptions = {}): Promise<Bus> {
  const { amqpUrl, log, ...rest } = options;
  const settings = { ...DEFAULT_BUS_SETTINGS, ...definedOnly(rest), log: log ?? pino({ level: 'silent' }) };
  return amqpUrl ? rabbitBus(amqpUrl, settings) : Promise.resolve(inProcessBus(settings));
}
