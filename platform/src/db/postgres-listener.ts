import pg from 'pg';

type Handler = (payload: string) => void;

const RECONNECT_MS = { first: 100, max: 5_000 };

/**
 * LISTEN on one dedicated connection per pool, shared by every listener of the process: a pooled connection
 * cannot listen (it goes back to the pool). A lost connection is replaced, backing off up to 5 s, and listens
 * again on every channel still wanted.
 */
export function postgresListener(url: string, applicationName: string) {
  const handlers = new Map<string, Set<Handler>>();
  let connection: Promise<pg.Client> | undefined;
  let closed = false;
  let retryMs = RECONNECT_MS.first;

  function connected(): Promise<pg.Client> {
    connection ??= open().catch((error: unknown) => {
      retryLater();
      throw error;
    });
    return connection;
  }

  async function open(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url, application_name: applicationName });
    client.on('notification', ({ channel, payload }) => {
      for (const handler of handlers.get(channel) ?? []) handler(payload ?? '');
    });
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      client.end().catch(() => {});
      retryLater();
    };
    client.on('error', onLost);
    client.on('end', onLost);
    await client.connect();
    for (const channel of handlers.keys()) await client.query(`LISTEN ${channel}`);
    retryMs = RECONNECT_MS.first;
    return client;
  }

  function retryLater() {
    connection = undefined;
    if (closed || handlers.size === 0) return;
    setTimeout(() => void connected().catch(() => {}), retryMs).unref();
    retryMs = Math.min(RECONNECT_MS.max, retryMs * 2);
  }

  return {
    /** `channel` must be a plain identifier: it is spliced into LISTEN. */
    async listen(channel: string, handler: Handler): Promise<() => Promise<void>> {
      const existing = handlers.get(channel);
      if (existing) existing.add(handler);
      else {
        handlers.set(channel, new Set([handler]));
        await (await connected()).query(`LISTEN ${channel}`);
      }
      return async () => {
        const set = handlers.get(channel);
        if (!set?.delete(handler) || set.size > 0) return;
        handlers.delete(channel);
        await connection?.then((client) => client.query(`UNLISTEN ${channel}`)).catch(() => {});
      };
    },
    async close() {
      closed = true;
      handlers.clear();
      const client = await connection?.catch(() => undefined);
      connection = undefined;
      await client?.end().catch(() => {});
    },
  };
}
