import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(service: string, level: string): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], remove: true },
  });
}

/**
 * For an outage that fails every call: warns with `message` at most once per `everyMs`, with how many calls
 * failed since the last warning, not once per call.
 */
export function occasionalWarning(log: Pick<Logger, 'warn'>, message: string, everyMs = 30_000): (error: unknown) => void {
  let lastWarnedAt = -Infinity;
  let failures = 0;
  return (error) => {
    failures += 1;
    const now = Date.now();
    if (now - lastWarnedAt < everyMs) return;
    log.warn({ err: error, failures }, message);
    lastWarnedAt = now;
    failures = 0;
  };
}
