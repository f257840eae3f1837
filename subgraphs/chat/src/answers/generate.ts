/**
 * Generating one answer, in the background of the `ask` that queued it: retrieve passages as the caller,
 * fit the prompt, take it from the inference cache or stream it from the routed model, and write every step as
 * an event (TOKEN…, CITATIONS, USAGE, then DONE — or ERROR, always last). Token budgets (the tenant's, and the
 * member's own) are reserved before the model is called and settled after; usage is recorded whichever way the
 * answer ends. The model call is cancelled once nobody has watched the answer for `abandonAfterMs`.
 */
import { performance } from 'node:perf_hooks';
import { usageEvent, USAGE_TOPIC, type Principal } from '@jarvis/platform/contracts';
import type { Database, Transaction } from '@jarvis/platform/db';
import { AppError, ErrorCode } from '@jarvis/platform/errors';
import { uuidOf } from '@jarvis/platform/ids';
import type { LimitStore } from '@jarvis/platform/limits';
import type { Logger } from '@jarvis/platform/logger';
import { writeEvent } from '@jarvis/platform/outbox';
import { SpanKind, traced } from '@jarvis/platform/telemetry';
import { tokenBudget, type TokenQuota } from '../budgets/token-budget.ts';
import type { CacheKey, InferenceCache } from '../cache/types.ts';
import type { CompletionRequest } from '../models/port.ts';
import type { RoutedChunk, RoutingStrategy } from '../models/router.ts';
import { finishMessage, touchMessage, type MessageStatus, type StoredCitation } from '../messages/store.ts';
import { EventWriter } from './event-writer.ts';
import type { AnswerUsage } from './events-store.ts';
import { RetrievalError, type Retrieve } from './retrieval.ts';
import type { ChatMetrics } from './metrics.ts';
import type { AnswerSignals } from './signals.ts';


export interface HistoryTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** What the models part of the chat subgraph offers an answer (models/: registry, router, tokens). */
export interface AnswerModels {
  /** The prompt for the question, fitted to the chosen model's context budget (or the largest one's). */
  prompt(input: { question: string; passages: StoredCitation[]; history: HistoryTurn[]; model?: string | undefined }): Prompt;
  /** Routed streaming: `{kind:'model'}` first, then tokens and usage; a break after tokens throws. */
  stream(prompt: Prompt, choice: { model?: string | undefined; strategy: RoutingStrategy; signal: AbortSignal }): AsyncIterable<RoutedChunk>;
  cost(model: string, usage: { promptTokens: number; completionTokens: number }): number;
  countTokens(text: string): number;
  /** The stable code of a model failure: STREAM_BROKEN after tokens were sent, MODEL_UNAVAILABLE before; else undefined. */
  failureCode(error: unknown): string | undefined;
}

export interface Prompt {
  /** The normalized text the model gets: the inference cache's exact key. */
  text: string;
  passages: StoredCitation[];
  promptTokens: number;
  maxTokens: number;
  /** The request for the model port, less the signal each call brings. */
  request: Omit<CompletionRequest, 'signal'>;
}

export interface AnswerDeps {
  db: Database;
  log: Logger;
  models: AnswerModels;
  cache: InferenceCache;
  retrieve: Retrieve;
  signals: AnswerSignals;
  limits: LimitStore;
  outbox: { notify(): void };
  abandonAfterMs: number;
  flushMs: number;
  /** Passages retrieved per question. */
  topK: number;
  metrics: ChatMetrics;
}

export interface AnswerJob {
  principal: Principal;
  tenantId: string;
  messageId: string;
  question: string;
  history: HistoryTurn[];
  knowledgeBaseIds: string[] | null;
  model?: string | undefined;
  strategy: RoutingStrategy;
  /** Daily and monthly token budgets and concurrent answers, from the tenant's plan and its own lower quota. */
  quota: TokenQuota;
}

/** Ends an answer early with a stable code: the ERROR event's, and the message's status. */
class AnswerStopped extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: Exclude<MessageStatus, 'STREAMING' | 'DONE'> = 'ERROR',
  ) {
    super(message);
  }
}

/** How often a generator shows it is alive; the sweep (sweep.ts) waits several times this. */
export const ANSWER_TOUCH_MS = 10_000;

export async function generateAnswer(job: AnswerJob, deps: AnswerDeps): Promise<void> {
  const writer = new EventWriter(deps.db, job.tenantId, job.messageId, deps.flushMs);
  const abort = new AbortController();
  const stopTracking = deps.signals.track(job.messageId);
  const startedAt = Date.now();
  // Unwatched at two checks in a row: after a stall of the event loop, announcements that came meanwhile are
  // read between the two, so a busy process does not cancel an answer someone follows.
  let unwatchedChecks = 0;
  const watchdog = setInterval(() => {
    const lastWatched = Math.max(startedAt, deps.signals.lastWatched(job.messageId, deps.abandonAfterMs));
    unwatchedChecks = Date.now() - lastWatched > deps.abandonAfterMs ? unwatchedChecks + 1 : 0;
    if (unwatchedChecks >= 2) abort.abort(new AnswerStopped('CANCELLED', 'nobody followed the answer any more', 'CANCELLED'));
  }, Math.max(50, deps.abandonAfterMs / 4));
  const alive = setInterval(() => {
    deps.db.withTenant(job.tenantId, (tx) => touchMessage(tx, job.messageId)).catch((error: unknown) => deps.log.warn({ err: error }, 'could not touch the answer'));
  }, ANSWER_TOUCH_MS);
  const answer = { text: '', model: null as string | null, citations: [] as StoredCitation[], usage: undefined as AnswerUsage | undefined };
  const budget = tokenBudget({
    tenantId: job.tenantId,
    memberId: job.principal.userId,
    quota: job.quota,
    limits: deps.limits,
    refused: (limit) => deps.metrics.limitRejections.inc({ limit, code: ErrorCode.QUOTA_EXCEEDED }),
  });
  // Before the last event is written: a reader who sees DONE may ask again at once, and finds its slot free and
  // its tokens counted as they were used, not as they were reserved.
  let settled = false;
  const settle = async () => {
    if (settled) return;
    settled = true;
    const spent = answer.usage && !answer.usage.cacheHit ? answer.usage : undefined;
    if (spent) countTokens(deps.metrics, spent);
    // A limit store that failed must not keep the answer from ending; reservations left behind lapse on their own.
    await budget
      .close(spent ? spent.promptTokens + spent.completionTokens : 0)
      .catch((error: unknown) => deps.log.warn({ err: error }, "could not settle the answer's budgets"));
  };
  try {
    await budget.openStream();
    const passages = await deps.retrieve(job.principal, job.question, job.knowledgeBaseIds, deps.topK);
    const prompt = deps.models.prompt({ question: job.question, passages, history: job.history, model: job.model });
    await budget.reserve(prompt.promptTokens + prompt.maxTokens);
    const fromCache = await produce(job, deps, prompt, writer, answer, abort.signal);
    answer.citations = cited(prompt.passages, answer.text);
    if (!fromCache) await remember(job, deps, prompt, answer);
    writer.push('CITATIONS', { citations: answer.citations });
    writer.push('USAGE', { usage: answer.usage! });
    await settle();
    await writer.end('DONE', {}, (tx) => finish(tx, job, deps, answer, 'DONE', null));
    deps.outbox.notify();
  } catch (caught) {
    const error = abort.signal.aborted ? abort.signal.reason : caught;
    const stopped = asStopped(error, deps);
    if (stopped.code === 'INTERNAL_SERVER_ERROR') deps.log.error({ err: caught, messageId: job.messageId }, 'answer failed');
    answer.usage ??= spentSoFar(answer, deps.models);
    await settle();
    await writer.end('ERROR', { error: { code: stopped.code, message: stopped.message } }, (tx) => finish(tx, job, deps, answer, stopped.status, stopped.message));
    deps.outbox.notify();
  } finally {
    clearInterval(watchdog);
    clearInterval(alive);
    stopTracking();
    await settle(); // whatever threw before settling, the slot and the reservations are freed all the same
  }
}

function countTokens(metrics: ChatMetrics, { model, promptTokens, completionTokens }: AnswerUsage) {
  metrics.tokens.inc({ model, kind: 'prompt' }, promptTokens);
  metrics.tokens.inc({ model, kind: 'completion' }, completionTokens);
}

/**
 * The answer's tokens, from the cache (a hit streams like a miss) or from the model; fills `answer`. True when
 * the cache answered.
 */
async function produce(job: AnswerJob, deps: AnswerDeps, prompt: Prompt, writer: EventWriter, answer: Answer, signal: AbortSignal): Promise<boolean> {
  const hit = await deps.cache.lookup(cacheKey(job, prompt));
  deps.metrics.cacheLookups.inc(hit ? { result: 'hit', kind: hit.kind } : { result: 'miss', kind: '' });
  if (hit) {
    for (const token of hit.answer.text.match(/\S+\s*/g) ?? []) {
      if (signal.aborted) throw signal.reason;
      answer.text += token;
      writer.push('TOKEN', { delta: token });
    }
    const { model, promptTokens, completionTokens } = hit.answer;
    answer.model = model;
    answer.usage = { model, promptTokens, completionTokens, cost: 0, cacheHit: hit.kind };
    return true;
  }
  const requested = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': job.model ?? `strategy:${job.strategy}` };
  return traced('gen_ai chat', { kind: SpanKind.CLIENT, attributes: requested }, async (span) => {
    const started = performance.now();
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    for await (const chunk of deps.models.stream(prompt, { model: job.model, strategy: job.strategy, signal })) {
      if (chunk.kind === 'model') answer.model = chunk.name;
      else if (chunk.kind === 'usage') usage = chunk;
      else {
        if (!answer.text) deps.metrics.timeToFirstToken.observe({ model: answer.model ?? 'unknown' }, (performance.now() - started) / 1000);
        answer.text += chunk.text;
        writer.push('TOKEN', { delta: chunk.text });
      }
    }
    const model = answer.model ?? 'unknown';
    usage ??= { promptTokens: prompt.promptTokens, completionTokens: deps.models.countTokens(answer.text) };
    answer.usage = { model, ...usage, cost: deps.models.cost(model, usage), cacheHit: null };
    span?.setAttributes({ 'gen_ai.response.model': model, 'gen_ai.usage.input_tokens': usage.promptTokens, 'gen_ai.usage.output_tokens': usage.completionTokens });
    return false;
  });
}

/**
 * A model's answer into the cache, under what was asked (a model or a strategy) and under the model that
 * answered, which a later question may name.
 */
async function remember(job: AnswerJob, deps: AnswerDeps, prompt: Prompt, answer: Answer): Promise<void> {
  if (!answer.text || !answer.usage) return;
  const { model, promptTokens, completionTokens } = answer.usage;
  const cached = { text: answer.text, citations: answer.citations, model, promptTokens, completionTokens, createdAt: new Date().toISOString() };
  const key = cacheKey(job, prompt);
  const keys = key.model === model ? [key] : [key, { ...key, model }];
  await Promise.all(keys.map((k) => deps.cache.store(k, cached))).catch((error: unknown) => deps.log.warn({ err: error }, 'could not cache an answer'));
}

type Answer = { text: string; model: string | null; citations: StoredCitation[]; usage: AnswerUsage | undefined };

/** The exact key is the fitted prompt under the model asked for (or the strategy that will pick one). */
function cacheKey(job: AnswerJob, prompt: Prompt): CacheKey {
  return { tenantId: job.tenantId, model: job.model ?? `strategy:${job.strategy}`, params: { maxTokens: prompt.maxTokens }, prompt: prompt.text, question: job.question };
}

/** The passages the text cites as [n]; all of them when it cites none explicitly. */
function cited(passages: StoredCitation[], text: string): StoredCitation[] {
  const numbers = new Set([...text.matchAll(/\[(\d+)\]/g)].map((match) => Number(match[1])));
  const referenced = passages.filter((passage) => numbers.has(passage.n));
  return referenced.length > 0 ? referenced : numbers.size === 0 ? passages : [];
}

function spentSoFar(answer: Answer, models: AnswerModels): AnswerUsage {
  const model = answer.model ?? 'none';
  const usage = { promptTokens: 0, completionTokens: answer.text ? models.countTokens(answer.text) : 0 };
  return { model, ...usage, cost: answer.model ? models.cost(model, usage) : 0, cacheHit: null };
}

/** The message's final state, and the tokens it consumed as usage events (none for a cache hit). */
async function finish(tx: Transaction, job: AnswerJob, deps: AnswerDeps, answer: Answer, status: Exclude<MessageStatus, 'STREAMING'>, error: string | null) {
  await finishMessage(tx, job.messageId, { content: answer.text, status, model: answer.model, citations: answer.citations, error });
  const usage = answer.usage;
  if (!usage || usage.cacheHit) return;
  const userId = job.principal.userId ?? null;
  const isolation = job.principal.isolation;
  for (const [metric, quantity] of [['PROMPT_TOKENS', usage.promptTokens], ['COMPLETION_TOKENS', usage.completionTokens]] as const) {
    if (quantity <= 0) continue;
    const event = usageEvent(job.tenantId, { metric, quantity, model: usage.model, userId, isolation }, eventId(job.messageId, metric));
    await writeEvent(tx, USAGE_TOPIC, event);
  }
}

/** One id per answer and metric: a retried finish counts once. */
const eventId = (messageId: string, metric: string) => uuidOf(`chat-usage:${messageId}:${metric}`);

const MODEL_FAILURES: Record<string, string> = {
  STREAM_BROKEN: 'the model stopped answering midway',
  MODEL_UNAVAILABLE: 'no model could answer just now; try again later',
};

function asStopped(error: unknown, deps: AnswerDeps): AnswerStopped {
  if (error instanceof AnswerStopped) return error;
  if (error instanceof AppError) return new AnswerStopped(error.code, error.message);
  const modelFailure = deps.models.failureCode(error);
  if (modelFailure) {
    // The details (endpoints, upstream messages) are for the operator's log, not the reader.
    deps.log.warn({ err: error }, 'the model call failed');
    return new AnswerStopped(modelFailure, MODEL_FAILURES[modelFailure] ?? 'the model call failed');
  }
  if (error instanceof RetrievalError) return new AnswerStopped(error.code, error.message);
  return new AnswerStopped(ErrorCode.INTERNAL_SERVER_ERROR, 'the answer could not be generated');
}
