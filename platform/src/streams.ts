/**
 * `source` with each value passed through `map`, leaving out those it maps to undefined. Unlike an async
 * generator, `return()` ends `source` at once even while a `next()` waits on it, so a subscription that is
 * stopped lets go of its listener right away rather than at the next event.
 */
export function mapStream<T, U>(source: AsyncIterator<T>, map: (value: T) => Promise<U | undefined>): AsyncIterableIterator<U> {
  const done = (): IteratorResult<U> => ({ done: true, value: undefined });
  return {
    async next() {
      for (;;) {
        const item = await source.next();
        if (item.done) return done();
        const mapped = await map(item.value);
        if (mapped !== undefined) return { done: false, value: mapped };
      }
    },
    async return() {
      await source.return?.();
      return done();
    },
    async throw(error: unknown) {
      await source.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** The values first, then `rest`: a subscription's current state, then its changes. */
export function startWith<T>(values: readonly T[], rest: AsyncIterator<T>): AsyncIterableIterator<T> {
  const queued = [...values];
  return mapStream(
    {
      next: () => (queued.length > 0 ? Promise.resolve({ done: false, value: queued.shift()! }) : rest.next()),
      return: async () => (await rest.return?.()) ?? { done: true, value: undefined },
    },
    async (value) => value,
  );
}

/**
 * `source` as it is, calling `ended` once when it finishes, fails, or is returned (unsubscribed); what it
 * throws passes through `mapError` first.
 */
export function onStreamEnd<T>(source: AsyncIterator<T>, ended: () => void, mapError: (error: unknown) => unknown = (error) => error): AsyncIterableIterator<T> {
  let open = true;
  const end = () => {
    if (open) ended();
    open = false;
  };
  return {
    async next() {
      try {
        const item = await source.next();
        if (item.done) end();
        return item;
      } catch (error) {
        end();
        throw mapError(error);
      }
    },
    async return() {
      end();
      return (await source.return?.()) ?? { done: true, value: undefined };
    },
    async throw(error: unknown) {
      end();
      await source.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

export interface TailOptions<E> {
  /** Resume after this sequence number. */
  afterSeq: number;
  /** Up to `pageSize` events after `afterSeq`, in order. */
  read(afterSeq: number): Promise<E[]>;
  pageSize: number;
  seqOf(event: E): number;
  /** The event after which the stream ends (DONE, ERROR, …). */
  isLast(event: E): boolean;
  /** What to send after `heartbeatMs` without an event. */
  heartbeat(lastSeq: number): E;
  heartbeatMs: number;
  /** Calls `wake` whenever new events may have committed, until the returned stop is called. */
  onCommit(wake: () => void): () => void;
  /** Called once when the stream ends or its subscriber leaves. */
  onClose?(): void;
}

/**
 * A log's events after `afterSeq`, read from its table and then as they commit (woken by `onCommit`), ending after
 * the last one; a heartbeat whenever nothing came for `heartbeatMs`. Resuming from the last seq received gives no
 * gap and no repeat.
 */
export function tailStream<E>(options: TailOptions<E>): AsyncIterableIterator<E> {
  const queue: E[] = [];
  let lastSeq = options.afterSeq;
  let ended = false;
  let closed = false;
  let woken = true;
  let wake: (() => void) | undefined;
  const stop = options.onCommit(() => {
    woken = true;
    wake?.();
  });

  async function fill(): Promise<void> {
    woken = false;
    const events = await options.read(lastSeq);
    queue.push(...events);
    if (events.length > 0) lastSeq = options.seqOf(events.at(-1)!);
    if (events.length === options.pageSize) woken = true;
  }

  /** Resolves true when woken, false after heartbeatMs of quiet (or on close). */
  function sleep(): Promise<boolean> {
    if (woken || closed) return Promise.resolve(woken);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve(false);
      }, options.heartbeatMs);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve(true);
      };
    });
  }

  function close(): void {
    if (closed) return;
    closed = true;
    stop();
    wake?.();
    options.onClose?.();
  }

  const done = (): IteratorResult<E> => ({ done: true, value: undefined });
  return {
    async next() {
      while (!closed) {
        const event = queue.shift();
        if (event !== undefined) {
          if (options.isLast(event)) ended = true;
          return { done: false, value: event };
        }
        if (ended) break;
        if (woken) {
          await fill();
          continue;
        }
        if (!(await sleep()) && !closed) return { done: false, value: options.heartbeat(lastSeq) };
      }
      close();
      return done();
    },
    async return() {
      close();
      return done();
    },
    async throw(error: unknown) {
      close();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
