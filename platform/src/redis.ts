import { Redis } from 'ioredis';

/**
 * A Redis client for work that sits on a request's path (limits, the inference cache): while Redis is away a
 * command fails at once instead of waiting in a queue, and one cut off with its connection fails rather than
 * being sent again after its caller gave up on it; a dead or hung Redis answers within `commandTimeoutMs`.
 * Connects lazily; `connected` settles once the first attempt has succeeded or failed.
 */
export function failFastRedis(url: string, { commandTimeoutMs, onConnectionError }: { commandTimeoutMs: number; onConnectionError: (error: Error) => void }) {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 1_000,
    commandTimeout: commandTimeoutMs,
  });
  redis.on('error', onConnectionError);
  return redis;
}
