/**
 * JSON over PostgreSQL's LISTEN/NOTIFY, for signals between replicas of a service that share its database:
 * sent when the sending transaction commits, received by every listener. A notification only wakes or
 * tells; what it names is read from the tables.
 */
import type { z } from 'zod';
import type { Database, Transaction } from './db/index.ts';
import type { Logger } from './logger.ts';

/** Calls `onValue` with each notification on `channel` that `schema` accepts; others are logged and dropped. */
export function listenJson<T>(db: Database, channel: string, schema: z.ZodType<T>, log: Logger, onValue: (value: T) => void): Promise<() => Promise<void>> {
  return db.listen(channel, (payload) => {
    const parsed = schema.safeParse(parsedJson(payload));
    if (parsed.success) onValue(parsed.data);
    else log.warn({ channel, payload }, 'ignored a malformed notification');
  });
}

/** Sends `value` on `channel` when `tx` commits. */
export async function notifyJson(tx: Transaction, channel: string, value: unknown): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify(value)]);
}

function parsedJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
