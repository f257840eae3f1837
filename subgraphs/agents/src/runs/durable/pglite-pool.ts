/**
 * The embedded default's system database for DBOS: a `pg.Pool` look-alike over one in-process PGlite. PGlite is
 * a single session, so the pool hands out clients that share it and serialises work by transaction: a client
 * holds the session from BEGIN to COMMIT/ROLLBACK, a statement outside a transaction holds it for that statement.
 * LISTEN becomes PGlite's own listener, so DBOS's notifications (recv, events) wake waiters at once instead
 * of by polling. Results take pg's shape (rowCount, int8 and numeric as text).
 */
import { EventEmitter } from 'node:events';
import type { PGlite, Results } from '@electric-sql/pglite';

type QueryArg = string | { text: string; values?: unknown[] };

interface PgResult {
  rows: Record<string, unknown>[];
  rowCount: number;
  fields: { name: string; dataTypeID: number }[];
  command: string;
}

/** A FIFO lock: who holds PGlite's one session. */
class SessionLock {
  private tail: Promise<void> = Promise.resolve();

  acquire(): Promise<() => void> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const acquired = this.tail.then(() => release);
    this.tail = this.tail.then(() => released);
    return acquired;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await work();
    } finally {
      release();
    }
  }
}

const BEGIN = /^\s*(BEGIN|START\s+TRANSACTION)\b/i;
const END = /^\s*(COMMIT|ROLLBACK|END|ABORT)\b(?!\s+TO\b)/i;
const LISTEN = /^\s*LISTEN\s+"?([\w.]+)"?\s*;?\s*$/i;
const UNLISTEN = /^\s*UNLISTEN\s+"?([\w.*]+)"?\s*;?\s*$/i;

async function execute(db: PGlite, arg: QueryArg, values?: unknown[]): Promise<PgResult> {
  const text = typeof arg === 'string' ? arg : arg.text;
  const params = (typeof arg === 'string' ? values : arg.values) ?? [];
  if (params.length === 0 && hasSeveralStatements(text)) {
    const results = await db.exec(text);
    return asPgResult(results.at(-1), text);
  }
  return asPgResult(await db.query(text, params), text);
}

function hasSeveralStatements(text: string): boolean {
  return text.trim().replace(/;\s*$/, '').includes(';');
}

function asPgResult(result: Results | undefined, text: string): PgResult {
  const rows = (result?.rows ?? []) as Record<string, unknown>[];
  const fields = result?.fields ?? [];
  return {
    rows,
    // As pg counts: the rows a statement returns when it returns any columns (PGlite says 0 affected for a SELECT).
    rowCount: fields.length > 0 ? rows.length : (result?.affectedRows ?? 0),
    fields,
    command: text.trim().split(/\s+/, 1)[0]!.toUpperCase(),
  };
}

class PgliteClient extends EventEmitter {
  private releaseSession: (() => void) | undefined;
  private readonly stops = new Map<string, () => Promise<void>>();

  constructor(
    private readonly db: PGlite,
    private readonly lock: SessionLock,
  ) {
    super();
  }

  async query(arg: QueryArg, values?: unknown[]): Promise<PgResult> {
    const text = typeof arg === 'string' ? arg : arg.text;
    const listen = LISTEN.exec(text);
    if (listen) return this.listen(listen[1]!);
    const unlisten = UNLISTEN.exec(text);
    if (unlisten) return this.unlisten(unlisten[1]!);
    if (this.releaseSession) return this.inTransaction(arg, values, text);
    if (BEGIN.test(text)) {
      this.releaseSession = await this.lock.acquire();
      return this.inTransaction(arg, values, text);
    }
    return this.lock.run(() => execute(this.db, arg, values));
  }

  release(): void {
    if (this.releaseSession) void this.query('ROLLBACK').catch(() => undefined);
  }

  async end(): Promise<void> {
    this.release();
    await Promise.all([...this.stops.values()].map((stop) => stop()));
    this.stops.clear();
  }

  private async inTransaction(arg: QueryArg, values: unknown[] | undefined, text: string): Promise<PgResult> {
    try {
      return await execute(this.db, arg, values);
    } finally {
      if (END.test(text)) this.endTransaction();
    }
  }

  private endTransaction(): void {
    const release = this.releaseSession;
    this.releaseSession = undefined;
    release?.();
  }

  private async listen(channel: string): Promise<PgResult> {
    if (!this.stops.has(channel)) {
      const stop = await this.db.listen(channel, (payload) => this.emit('notification', { channel, payload, processId: 0 }));
      this.stops.set(channel, stop);
    }
    return asPgResult(undefined, 'LISTEN');
  }

  private async unlisten(channel: string): Promise<PgResult> {
    for (const [name, stop] of this.stops) {
      if (channel === '*' || channel === name) {
        await stop();
        this.stops.delete(name);
      }
    }
    return asPgResult(undefined, 'UNLISTEN');
  }
}

/** Enough of `pg.Pool` for DBOS's system database. */
export class PglitePool extends EventEmitter {
  readonly options = { max: 4 };
  private readonly lock = new SessionLock();
  private readonly clients = new Set<PgliteClient>();

  constructor(private readonly db: PGlite) {
    super();
  }

  async connect(): Promise<PgliteClient> {
    const client = new PgliteClient(this.db, this.lock);
    this.clients.add(client);
    return client;
  }

  query(arg: QueryArg, values?: unknown[]): Promise<PgResult> {
    return this.lock.run(() => execute(this.db, arg, values));
  }

  /** Stops listening; the PGlite itself is its owner's to close. */
  async end(): Promise<void> {
    await Promise.all([...this.clients].map((client) => client.end()));
    this.clients.clear();
  }

  get totalCount(): number {
    return this.clients.size;
  }
  get idleCount(): number {
    return 0;
  }
  get waitingCount(): number {
    return 0;
  }
}
