import type { Logger } from '../logger.ts';

/** One fact a service announces. `id` is the idempotency key: consumers count an id once, however often it arrives. */
export interface BusEvent {
  id: string;
  type: string;
  tenantId: string;
  occurredAt: string;
  payload: Record<string, unknown>;
  /** W3C trace context (`traceparent`) of the work that produced the event, while tracing is on. */
  traceContext?: Record<string, string>;
}

export type EventHandler = (event: BusEvent) => Promise<void>;

export interface Subscription {
  /** Stops taking events and waits for the handlers still running; the group's queue keeps the rest. */
  close(): Promise<void>;
}

export interface Bus {
  /** At-least-once: resolves once the broker has the event (publisher confirms, persistent messages). */
  publish(topic: string, event: BusEvent): Promise<void>;
  /**
   * A durable subscription named `group`: one queue per topic and group, shared by the group's competing
   * consumers, kept while no consumer is attached. The handler resolving acknowledges the event; throwing
   * hands it back for another attempt after `retryDelayMs`, and after `maxAttempts` failures it is moved to
   * the group's dead-letter queue. At most `prefetch` handlers run at once per subscription.
   */
  subscribe(topic: string, group: string, handler: EventHandler): Promise<Subscription>;
  /** Closes every subscription (waiting for their handlers), then the connection. */
  close(): Promise<void>;
}

export interface BusOptions {
  /** A RabbitMQ URL; without it the bus lives in this process. */
  amqpUrl?: string | undefined;
  log?: Logger | undefined;
  /** The topic exchange events are published to. */
  exchange?: string;
  /** Put in front of every queue name (`<prefix><group>.<topic>`), so test runs stay apart. */
  queuePrefix?: string;
  prefetch?: number;
  retryDelayMs?: number;
  maxAttempts?: number;
  /** How long `publish` waits for the broker's confirm (also while reconnecting) before it rejects. */
  publishTimeoutMs?: number;
}

export type BusSettings = Required<Omit<BusOptions, 'amqpUrl'>>;

export const DEFAULT_BUS_SETTINGS: Omit<BusSettings, 'log'> = {
  exchange: 'jarvis.events',
  queuePrefix: '',
  prefetch: 16,
  retryDelayMs: 1000,
  maxAttempts: 5,
  publishTimeoutMs: 10_000,
};

/**
 * Dot-separated words, no AMQP wildcards: a topic exchange would treat `*` and `#` as patterns, which the
 * in-process bus does not, and both must route alike.
 */
const NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export function assertBusName(kind: 'topic' | 'group', name: string): void {
  if (!NAME.test(name)) throw new Error(`${kind} "${name}" must be dot-separated words of letters, digits, _ and -`);
}

export function queueName(settings: Pick<BusSettings, 'queuePrefix'>, topic: string, group: string): string {
  return `${settings.queuePrefix}${group}.${topic}`;
}
