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
