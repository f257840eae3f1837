import { createLogger, type Logger } from '../logger.ts';
import { limitStoreWarning, withFailureMode, type LimitFailureMode } from './failure-mode.ts';
import { MemoryLimitStore } from './memory.ts';
import { RedisLimitStore } from './redis.ts';
import type { LimitStore } from './types.ts';

export type * from './types.ts';
export type { LimitFailureMode } from './failure-mode.ts';
export { LimitArgumentError } from './arguments.ts';
export { MemoryLimitStore } from './memory.ts';
export { RedisLimitStore } from './redis.ts';

export interface LimitStoreOptions {
  /** Unset: limits live in this process (the embedded default), which is right for one replica only. */
  redisUrl?: string;
  failureMode: LimitFailureMode;
  prefix?: string;
  log?: Pick<Logger, 'warn'>;
}

/** Rate limits, token budgets and concurrency leases: on Redis when a URL is given, in memory otherwise. */
export function openLimitStore({ redisUrl, failureMode, prefix, log = createLogger('limits', 'warn') }: LimitStoreOptions): LimitStore {
  if (!redisUrl) return new MemoryLimitStore();
  const warn = limitStoreWarning(log, failureMode);
  return withFailureMode(new RedisLimitStore({ url: redisUrl, prefix, onConnectionError: warn }), failureMode, warn);
}
