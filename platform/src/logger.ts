import { pino, type Logger } from 'pino';
import { traceIds } from './telemetry.ts';

export type { Logger };

/** A pino logger for `service`, writing to stdout unless given a destination. */
export function createLogger(service: string, level: string, destination?: pino.DestinationStream): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    // Log lines written while a span is active name its trace and span.
    mixin: traceIds,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], remove: true },
  }, destination);
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
