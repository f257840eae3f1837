/**
 * Routing over the registry's models: order the candidates by a strategy, try them in turn until one
 * produces its first chunk, then stream that one.
 *
 * - Strategies, chosen per request: `COST` (the cheapest for this request first: prompt tokens and
 *   `maxTokens` at the model's prices), `LATENCY` (models never measured first, then the lowest exponential
 *   moving average of time to first token), `QUALITY` (the highest quality first). Ties go to the other
 *   measure (quality for COST, cost for QUALITY), then to registry order.
 * - Models whose context window cannot hold the prompt and `maxTokens` are not tried.
 * - Fallback: a model that fails, or does not produce its first chunk within `firstTokenTimeoutMs`, is
 *   aborted (its HTTP request cancelled) and the next candidate is tried. Once a chunk has been passed on,
 *   a failure is not retried (the answer would change under the reader): it surfaces as `StreamBrokenError`
 *   after the chunks already yielded.
 * - A circuit breaker per model: `failureThreshold` consecutive failures open it; an open model is skipped;
 *   after `cooldownMs` it is half-open and lets one trial request through; the trial's success closes it, its
 *   failure opens it for another cooldown. A request aborted by its caller counts neither way.
 * - The stream yields `{ kind: 'model', name }` first (the model that answers), then that model's chunks.
 *   When every candidate fails before its first chunk, `AllModelsFailedError` lists why each one did.
 * - Aborting the request's signal cancels the model call in progress and throws the signal's reason.
 * - `complete` routes one non-streaming call (a conversation with tools) the same way: the same order,
 *   context-window check, circuits and fallback; a model that fails, or has not answered within
 *   `completionTimeoutMs`, is aborted and the next candidate tried. A whole answer's time is no time to first
 *   token, so it does not feed LATENCY's moving average.
 */
import { ROUTING_STRATEGIES } from '@jarvis/platform/config';
import { definedOnly } from '@jarvis/platform/options';
import { abortReason, type Completion, type CompletionChunk, type CompletionRequest, type ToolCompletionRequest } from './port.ts';
import { cost, type ModelRegistry, type ModelSpec, type RegisteredModel } from './registry.ts';

export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];

export type RoutedChunk = { kind: 'model'; name: string } | CompletionChunk;

/** A completion and the model that produced it. */
export type RoutedCompletion = Completion & { model: string };

export interface ModelRouterOptions {
  /** For requests that name none; default COST. */
  defaultStrategy?: RoutingStrategy;
  /** How long a model may take to produce its first chunk before the next one is tried; default 15 s. */
  firstTokenTimeoutMs?: number;
  /** Consecutive failures that open a model's circuit; default 3. */
  failureThreshold?: number;
  /** How long an open circuit stays open before a trial request; default 30 s. */
  cooldownMs?: number;
  /** Weight of the newest sample in the time-to-first-token moving average, in (0, 1]; default 0.3. */
  latencySmoothing?: number;
  /** How long a model may take over a whole `complete` call before the next one is tried; default 60 s. */
  completionTimeoutMs?: number;
}

export const ROUTER_DEFAULTS = {
  defaultStrategy: 'COST',
  firstTokenTimeoutMs: 15_000,
  failureThreshold: 3,
  cooldownMs: 30_000,
  latencySmoothing: 0.3,
  completionTimeoutMs: 60_000,
} as const satisfies Required<ModelRouterOptions>;

export interface RouteOptions {
  strategy?: RoutingStrategy;
  /** Only these models (by name) are candidates; all of the registry's when absent. */
  models?: readonly string[];
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface ModelHealth {
  name: string;
  circuit: CircuitState;
  consecutiveFailures: number;
  /** Moving average of time to first chunk, in ms; undefined until measured. */
  ttftMs: number | undefined;
}

/** A model failed after its first chunks were passed on; those stand, the answer is incomplete. */
export class StreamBrokenError extends Error {
  override name = 'StreamBrokenError';

  constructor(
    readonly model: string,
    /** Token chunks yielded before the failure. */
    readonly tokensSent: number,
    cause: unknown,
  ) {
    super(`model ${model} failed after ${tokensSent} tokens: ${messageOf(cause)}`, { cause });
  }
}

export interface ModelFailure {
  model: string;
  error: Error;
}

/** No candidate produced a first chunk; `failures` says why for each model considered, in the order tried. */
export class AllModelsFailedError extends Error {
  override name = 'AllModelsFailedError';

  constructor(readonly failures: readonly ModelFailure[]) {
    super(
      failures.length === 0
        ? 'no model could answer: no candidate models'
        : `no model could answer: ${failures.map(({ model, error }) => `${model}: ${error.message}`).join('; ')}`,
    );
  }
}

export class FirstTokenTimeoutError extends Error {
  override name = 'FirstTokenTimeoutError';

  constructor(readonly timeoutMs: number) {
    super(`no first token within ${timeoutMs} ms`);
  }
}

export class CompletionTimeoutError extends Error {
  override name = 'CompletionTimeoutError';

  constructor(readonly timeoutMs: number) {
    super(`no completion within ${timeoutMs} ms`);
  }
}

export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError';

  constructor(readonly retryInMs: number) {
    super(`circuit open after repeated failures (trial in ${Math.ceil(retryInMs)} ms)`);
  }
}

export class ContextWindowError extends Error {
  override name = 'ContextWindowError';

  constructor(
    readonly contextWindow: number,
    readonly needed: number,
  ) {
    super(`context window of ${contextWindow} tokens cannot hold ${needed} (prompt and maxTokens)`);
  }
}

/** One request's hold on a model's circuit; settles once. */
interface Ticket {
  succeed(): void;
  fail(): void;
  /** Neither: the caller went away. */
  release(): void;
}

class Circuit {
  consecutiveFailures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
  ) {}

  state(now: number): CircuitState {
    if (this.openedAt === undefined) return 'closed';
    return now - this.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  retryInMs(now: number): number {
    return this.openedAt === undefined ? 0 : Math.max(0, this.openedAt + this.cooldownMs - now);
  }

  /** A ticket when the model may be tried now: always while closed, one trial at a time while half-open. */
  acquire(now: number): Ticket | undefined {
    const state = this.state(now);
    if (state === 'open') return undefined;
    const trial = state === 'half-open';
    if (trial) {
      if (this.trialInFlight) return undefined;
      this.trialInFlight = true;
    }
    let settled = false;
    const settle = (outcome: 'success' | 'failure' | 'release') => {
      if (settled) return;
      settled = true;
      if (trial) this.trialInFlight = false;
      if (outcome === 'success') {
        this.consecutiveFailures = 0;
        this.openedAt = undefined;
      } else if (outcome === 'failure') {
        this.consecutiveFailures++;
        if (trial || this.consecutiveFailures >= this.threshold) this.openedAt = performance.now();
      }
    };
    return { succeed: () => settle('success'), fail: () => settle('failure'), release: () => settle('release') };
  }
}

export class ModelRouter {
  private readonly models: readonly RegisteredModel[];
  private readonly settings: Required<ModelRouterOptions>;
  private readonly circuits = new Map<string, Circuit>();
  private readonly ttft = new Map<string, number>();

  constructor(registry: ModelRegistry | readonly RegisteredModel[], options: ModelRouterOptions = {}) {
    this.models = 'models' in registry ? registry.models : registry;
    this.settings = { ...ROUTER_DEFAULTS, ...definedOnly(options) };
    const { firstTokenTimeoutMs, failureThreshold, cooldownMs, latencySmoothing, completionTimeoutMs } = this.settings;
    if (!(firstTokenTimeoutMs > 0)) throw new RangeError('firstTokenTimeoutMs must be positive');
    if (!(completionTimeoutMs > 0)) throw new RangeError('completionTimeoutMs must be positive');
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) throw new RangeError('failureThreshold must be a positive integer');
    if (!(cooldownMs >= 0)) throw new RangeError('cooldownMs must not be negative');
    if (!(latencySmoothing > 0 && latencySmoothing <= 1)) throw new RangeError('latencySmoothing must be in (0, 1]');
    for (const { spec } of this.models) this.circuits.set(spec.name, new Circuit(failureThreshold, cooldownMs));
  }

  /**
   * The models in the order `strategy` would try them for a request of `promptTokens` and `maxTokens`,
   * open circuits and too small context windows included (`stream` skips those).
   */
  order(strategy: RoutingStrategy, request: { promptTokens?: number; maxTokens?: number } = {}, only?: readonly string[]): ModelSpec[] {
    return this.ordered(strategy, request.promptTokens ?? 0, request.maxTokens ?? 0, only).map((entry) => entry.spec);
  }

  health(): ModelHealth[] {
    const now = performance.now();
    return this.models.map(({ spec }) => {
      const circuit = this.circuits.get(spec.name)!;
      return { name: spec.name, circuit: circuit.state(now), consecutiveFailures: circuit.consecutiveFailures, ttftMs: this.ttft.get(spec.name) };
    });
  }

  async *stream(request: CompletionRequest, options: RouteOptions = {}): AsyncGenerator<RoutedChunk, void, undefined> {
    const { signal } = request;
    const strategy = this.strategyOf(options);
    const { promptTokens } = request;
    const needed = promptTokens + request.maxTokens;
    const failures: ModelFailure[] = [];

    for (const { spec, model } of this.ordered(strategy, promptTokens, request.maxTokens, options.models)) {
      if (signal.aborted) throw abortReason(signal);
      const ticket = this.admit(spec, needed, failures);
      if (!ticket) continue;

      // The model gets a signal of its own, so a timeout can cancel it without cancelling the request.
      const attempt = new AbortController();
      const forwardAbort = () => attempt.abort(signal.reason);
      signal.addEventListener('abort', forwardAbort, { once: true });
      let iterator: AsyncIterator<CompletionChunk> | undefined;
      let finished = false;
      try {
        const started = performance.now();
        let result: IteratorResult<CompletionChunk>;
        try {
          iterator = model.stream({ ...request, signal: attempt.signal })[Symbol.asyncIterator]();
          result = await firstChunk(iterator, attempt, this.settings.firstTokenTimeoutMs);
        } catch (error) {
          if (signal.aborted) throw abortReason(signal);
          ticket.fail();
          failures.push({ model: spec.name, error: asError(error) });
          continue;
        }
        if (!result.done) this.recordTtft(spec.name, performance.now() - started);

        yield { kind: 'model', name: spec.name };
        let tokensSent = 0;
        try {
          while (!result.done) {
            yield result.value;
            if (result.value.kind === 'token') tokensSent++;
            result = await iterator.next();
          }
        } catch (error) {
          if (signal.aborted) throw abortReason(signal);
          ticket.fail();
          throw new StreamBrokenError(spec.name, tokensSent, error);
        }
        finished = true;
        ticket.succeed();
        return;
      } finally {
        signal.removeEventListener('abort', forwardAbort);
        if (!finished) {
          // Left early (aborted, failed, or the consumer stopped reading): cancel the model's call.
          ticket.release();
          attempt.abort(signal.aborted ? signal.reason : new DOMException('The model call was abandoned.', 'AbortError'));
          void iterator?.return?.()?.catch(() => undefined);
        }
      }
    }
    throw new AllModelsFailedError(failures);
  }

  /** One non-streaming call, routed as `stream` routes (see the module's comment); `AllModelsFailedError` when no candidate answered. */
  async complete(request: ToolCompletionRequest, options: RouteOptions = {}): Promise<RoutedCompletion> {
    const { signal } = request;
    const strategy = this.strategyOf(options);
    const needed = request.promptTokens + request.maxTokens;
    const failures: ModelFailure[] = [];

    for (const { spec, model } of this.ordered(strategy, request.promptTokens, request.maxTokens, options.models)) {
      if (signal.aborted) throw abortReason(signal);
      const ticket = this.admit(spec, needed, failures);
      if (!ticket) continue;
      // As in `stream`: the model's own signal, so a timeout cancels its call without cancelling the request.
      const attempt = new AbortController();
      const forwardAbort = () => attempt.abort(signal.reason);
      signal.addEventListener('abort', forwardAbort, { once: true });
      try {
        const timeoutMs = this.settings.completionTimeoutMs;
        const completion = await withinDeadline(model.complete({ ...request, signal: attempt.signal }), attempt, timeoutMs, () => new CompletionTimeoutError(timeoutMs));
        ticket.succeed();
        return { ...completion, model: spec.name };
      } catch (error) {
        if (signal.aborted) {
          ticket.release();
          throw abortReason(signal);
        }
        ticket.fail();
        failures.push({ model: spec.name, error: asError(error) });
      } finally {
        signal.removeEventListener('abort', forwardAbort);
        if (!attempt.signal.aborted) attempt.abort(new DOMException('The model call is over.', 'AbortError'));
      }
    }
    throw new AllModelsFailedError(failures);
  }

  private strategyOf(options: RouteOptions): RoutingStrategy {
    const strategy = options.strategy ?? this.settings.defaultStrategy;
    if (!ROUTING_STRATEGIES.includes(strategy)) throw new RangeError(`unknown routing strategy ${String(strategy)}`);
    return strategy;
  }

  /**
   * A ticket on the model's circuit when the model may be tried for a request of `needed` tokens; otherwise
   * why not, added to `failures`.
   */
  private admit(spec: ModelSpec, needed: number, failures: ModelFailure[]): Ticket | undefined {
    if (needed > spec.contextWindow) {
      failures.push({ model: spec.name, error: new ContextWindowError(spec.contextWindow, needed) });
      return undefined;
    }
    const circuit = this.circuits.get(spec.name)!;
    const ticket = circuit.acquire(performance.now());
    if (!ticket) failures.push({ model: spec.name, error: new CircuitOpenError(circuit.retryInMs(performance.now())) });
    return ticket;
  }

  private ordered(strategy: RoutingStrategy, promptTokens: number, maxTokens: number, only: readonly string[] | undefined): RegisteredModel[] {
    let models = [...this.models];
    if (only) {
      const unknown = only.filter((name) => !this.models.some(({ spec }) => spec.name === name));
      if (unknown.length > 0) throw new RangeError(`unknown models: ${unknown.join(', ')}`);
      models = models.filter(({ spec }) => only.includes(spec.name));
    }
    const price = (spec: ModelSpec) => cost(spec, { promptTokens, completionTokens: maxTokens });
    const byCost = (a: ModelSpec, b: ModelSpec) => price(a) - price(b) || a.costPer1kPromptTokens + a.costPer1kCompletionTokens - (b.costPer1kPromptTokens + b.costPer1kCompletionTokens);
    const byQuality = (a: ModelSpec, b: ModelSpec) => b.quality - a.quality;
    const byLatency = (a: ModelSpec, b: ModelSpec) => {
      const ta = this.ttft.get(a.name) ?? -1;
      const tb = this.ttft.get(b.name) ?? -1;
      return ta - tb;
    };
    const compare = {
      COST: (a: ModelSpec, b: ModelSpec) => byCost(a, b) || byQuality(a, b),
      QUALITY: (a: ModelSpec, b: ModelSpec) => byQuality(a, b) || byCost(a, b),
      LATENCY: byLatency,
    }[strategy];
    // The sort is stable and `models` is in registry order, so ties stay in registry order.
    return models.sort((a, b) => compare(a.spec, b.spec));
  }

  private recordTtft(name: string, ms: number): void {
    const previous = this.ttft.get(name);
    const alpha = this.settings.latencySmoothing;
    this.ttft.set(name, previous === undefined ? ms : alpha * ms + (1 - alpha) * previous);
  }
}

/**
 * The iterator's first result, or a rejection: its own failure, the attempt's abort, or the timeout (which
 * aborts the attempt). A model that ignores its signal cannot hold the request beyond the timeout.
 */
function firstChunk(
  iterator: AsyncIterator<CompletionChunk>,
  attempt: AbortController,
  timeoutMs: number,
): Promise<IteratorResult<CompletionChunk>> {
  return withinDeadline(iterator.next(), attempt, timeoutMs, () => new FirstTokenTimeoutError(timeoutMs));
}

/**
 * What `work` settles with, or a rejection: the attempt's abort, or the timeout's error (which aborts the
 * attempt). Work that ignores its signal cannot hold the caller beyond the timeout.
 */
async function withinDeadline<T>(work: Promise<T>, attempt: AbortController, timeoutMs: number, timedOut: () => Error): Promise<T> {
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = timedOut();
      attempt.abort(error);
      reject(error);
    }, timeoutMs);
    onAbort = () => reject(abortReason(attempt.signal));
    if (attempt.signal.aborted) onAbort();
    else attempt.signal.addEventListener('abort', onAbort, { once: true });
  });
  stopped.catch(() => undefined);
  try {
    return await Promise.race([work, stopped]);
  } finally {
    clearTimeout(timer);
    attempt.signal.removeEventListener('abort', onAbort!);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
