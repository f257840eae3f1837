/**
 * Completions for workflow and agent runs: one routed model call per idempotency key and tenant, within the
 * same token budgets as answers, its usage recorded once.
 *
 * - A key already answered gets the stored completion back, without a model call (nor a look at the model or
 *   the budgets: a run replaying a finished step must get what it got before).
 * - Otherwise the request is checked (the model in the registry, the messages well-formed, the call within a
 *   window), then the key is claimed by inserting its PENDING row in a transaction of its own. A second call
 *   with the key while the first is under way finds the row and waits for it to be DONE (and returns it), so
 *   the model is called once; a claim whose holder stopped touching it (it died) is taken over, and a claim
 *   given up (the call failed) is claimed anew.
 * - The holder reserves prompt tokens plus maxTokens against the tenant's and the member's budgets
 *   (budgets/token-budget.ts, as answers do): QUOTA_EXCEEDED with retryAfter, and no model call, when one
 *   cannot hold them. Then the router calls a model; a failure releases the reservations and gives the key up:
 *   MODEL_UNAVAILABLE when no model could answer. Otherwise the budgets are settled with the tokens used, and
 *   one transaction stores the completion and writes its usage events to the outbox, with ids derived from the
 *   tenant and the key: however often they are written, the ledger counts them once.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROUTING_STRATEGIES } from '@jarvis/platform/config';
import { requirePermission, usageEvent, USAGE_TOPIC, type Principal } from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { AppError, badUserInput, conflict, ErrorCode } from '@jarvis/platform/errors';
import { uuidOf } from '@jarvis/platform/ids';
import type { LimitStore } from '@jarvis/platform/limits';
import type { Logger } from '@jarvis/platform/logger';
import { writeEvent } from '@jarvis/platform/outbox';
import { memberAllowance, tenantQuota } from '@jarvis/platform/quota-overrides';
import { parseInput } from '@jarvis/platform/subgraph';
import { SpanKind, traced } from '@jarvis/platform/telemetry';
import { z } from 'zod';
import type { ChatMetrics } from '../answers/metrics.ts';
import { tokenBudget, type TokenQuota } from '../budgets/token-budget.ts';
import type { CompletionInput } from '../generated/schema-types.ts';
import type { ConversationMessage, ToolCall, ToolCompletionRequest, ToolDefinition } from '../models/port.ts';
import type { RoutedCompletion, RoutingStrategy } from '../models/router.ts';
import { countConversationTokens } from '../models/tokens.ts';
import type { CompletionModels } from './completion-models.ts';
import * as store from './store.ts';
import type { StoredCompletion } from './store.ts';

/** What `complete` returns: the schema's Completion. */
export interface CompletionResult {
  content: string | null;
  toolCalls: ToolCall[];
  model: string;
  promptTokens: number;
  completionTokens: number;
  cost: number;
}

export interface CompletionDeps {
  models: CompletionModels;
  limits: LimitStore;
  outbox: { notify(): void };
  defaultStrategy: RoutingStrategy;
  metrics: ChatMetrics;
  /** How often the holder of a key shows it is alive; its claim is stale after CLAIM_STALE_TOUCHES of these. Default 5 s. */
  claimTouchMs?: number;
  /** How long a second call with a key waits for the first to finish before CONFLICT; default 5 minutes. */
  claimWaitMs?: number;
}

/** A claim untouched for this many touch intervals lost its holder. */
const CLAIM_STALE_TOUCHES = 6;
const DEFAULTS = { claimTouchMs: 5_000, claimWaitMs: 300_000 };
/** How often a waiting call looks whether the key's holder has finished. */
const WAIT_POLL_MS = 100;

/** Chat's own stable code, also an answer's ERROR event's: no model could answer just now. */
export const MODEL_UNAVAILABLE = 'MODEL_UNAVAILABLE';

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const jsonText = (what: string) =>
  z.string().max(200_000, 'at most 200000 characters').refine(
    (text) => {
      try {
        JSON.parse(text);
        return true;
      } catch {
        return false;
      }
    },
    `must be ${what} as JSON text`,
  );

const toolCallChecks = z.object({
  id: z.string().min(1, 'must not be empty').max(200, 'at most 200 characters'),
  name: z.string().regex(TOOL_NAME, 'must be 1 to 64 letters, digits, _ or -'),
  arguments: jsonText('the arguments'),
});

const messageChecks = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool'], 'must be system, user, assistant or tool'),
  content: z.string().max(1_000_000, 'at most 1000000 characters').nullish(),
  toolCallId: z.string().min(1, 'must not be empty').max(200, 'at most 200 characters').nullish(),
  toolCalls: z.array(toolCallChecks).max(128, 'at most 128 tool calls').nullish(),
});

const toolChecks = z.object({
  name: z.string().regex(TOOL_NAME, 'must be 1 to 64 letters, digits, _ or -'),
  description: z.string().max(4000, 'at most 4000 characters').nullish(),
  parameters: z
    .string()
    .max(200_000, 'at most 200000 characters')
    .transform((text, ctx) => {
      try {
        const value: unknown = JSON.parse(text);
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: 'must be a JSON Schema object as JSON text' });
      return z.NEVER;
    }),
});

const keyChecks = z.object({
  idempotencyKey: z.string().min(1, 'must not be empty').max(255, 'at most 255 characters'),
});

const completionChecks = z.object({
  idempotencyKey: z.string(),
  messages: z.array(messageChecks).min(1, 'at least one message').max(1000, 'at most 1000 messages'),
  tools: z.array(toolChecks).max(128, 'at most 128 tools').nullish(),
  model: z.string().min(1, 'must not be empty').nullish(),
  strategy: z.enum(ROUTING_STRATEGIES).nullish(),
  maxTokens: z.number().int().min(1, 'at least 1').max(1_000_000, 'at most 1000000').nullish(),
  source: z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters'),
});

type CheckedInput = z.output<typeof completionChecks>;

/** The model call a checked input asks for, less its signal, and the model named (if any). */
interface PreparedCall {
  request: Omit<ToolCompletionRequest, 'signal'>;
  model: string | undefined;
  strategy: RoutingStrategy;
  source: string;
}

export class CompletionService {
  private readonly settings: Required<Pick<CompletionDeps, 'claimTouchMs' | 'claimWaitMs'>>;

  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly deps: CompletionDeps,
    private readonly log: Logger,
  ) {
    this.settings = {
      claimTouchMs: deps.claimTouchMs ?? DEFAULTS.claimTouchMs,
      claimWaitMs: deps.claimWaitMs ?? DEFAULTS.claimWaitMs,
    };
  }

  async complete(input: CompletionInput): Promise<CompletionResult> {
    // The field's @policy lets only agents:run through; checked again here, as services do.
    const tenantId = requirePermission(this.principal, 'agents:run');
    const { idempotencyKey: key } = parseInput(keyChecks, { idempotencyKey: input.idempotencyKey });
    const stored = await this.db.withTenant(tenantId, (tx) => store.completionByKey(tx, key));
    if (stored?.status === 'DONE') return resultOf(stored);

    const call = this.prepare(parseInput(completionChecks, input));
    const claim = randomUUID();
    const quota = await this.claim(tenantId, key, claim, call.source);
    if ('done' in quota) return resultOf(quota.done);

    const alive = setInterval(() => {
      this.db
        .withTenant(tenantId, (tx) => store.touchClaim(tx, key, claim))
        .catch((error: unknown) => this.log.warn({ err: error }, 'could not touch a pending completion'));
    }, this.settings.claimTouchMs);
    try {
      return await this.call(tenantId, key, claim, call, quota.quota);
    } finally {
      clearInterval(alive);
    }
  }

  /** The model call the input asks for; BAD_USER_INPUT for what the schema's types cannot say. */
  private prepare(input: CheckedInput): PreparedCall {
    const model = input.model ?? undefined;
    if (model && !this.deps.models.has(model)) throw badUserInput(`no model "${model}" in the registry`, 'model');
    const messages = conversationOf(input.messages);
    const tools: ToolDefinition[] = (input.tools ?? []).map((tool) => ({
      name: tool.name,
      ...(tool.description ? { description: tool.description } : {}),
      parameters: tool.parameters,
    }));
    const names = new Set<string>();
    tools.forEach((tool, i) => {
      if (names.has(tool.name)) throw badUserInput(`tools.${i}.name: "${tool.name}" is offered twice`, `tools.${i}.name`);
      names.add(tool.name);
    });
    const promptTokens = countConversationTokens(messages, tools);
    const maxTokens = input.maxTokens ?? this.deps.models.defaultMaxTokens(model);
    const window = this.deps.models.contextWindow(model);
    if (promptTokens + maxTokens > window) {
      const which = model ? `model "${model}"` : 'the largest model';
      throw badUserInput(`the messages (${promptTokens} tokens) and maxTokens (${maxTokens}) do not fit in the ${window}-token window of ${which}`, 'messages');
    }
    return {
      request: { messages, tools, promptTokens, maxTokens },
      model,
      strategy: input.strategy ?? this.deps.defaultStrategy,
      source: input.source,
    };
  }

  /**
   * The key claimed for `claim`, with the quota to reserve against; or the completion another call stored
   * under it meanwhile. Waits while another call holds the key; CONFLICT when it holds it for too long.
   */
  private async claim(tenantId: string, key: string, claim: string, source: string): Promise<{ quota: TokenQuota } | { done: StoredCompletion }> {
    const memberId = this.principal.userId;
    const staleAfterMs = CLAIM_STALE_TOUCHES * this.settings.claimTouchMs;
    const deadline = Date.now() + this.settings.claimWaitMs;
    for (;;) {
      const outcome = await this.db.withTenant(tenantId, async (tx) => {
        if (await store.claimCompletion(tx, { tenantId, idempotencyKey: key, claim, source, requestedBy: memberId ?? null }, staleAfterMs)) {
          const quota = await tenantQuota(tx, this.principal.plan);
          const allowance = memberId ? await memberAllowance(tx, memberId) : null;
          return { quota: { tokensPerDay: quota.tokensPerDay, tokensPerMonth: quota.tokensPerMonth, concurrentStreams: quota.concurrentStreams, memberTokensPerDay: allowance } };
        }
        return { existing: await store.completionByKey(tx, key) };
      });
      if (outcome.quota) return { quota: outcome.quota };
      if (outcome.existing?.status === 'DONE') return { done: outcome.existing };
      if (Date.now() > deadline) throw conflict(`a completion with this idempotencyKey is still being made; try again later`, 'idempotencyKey');
      await sleep(WAIT_POLL_MS);
    }
  }

  /** The claimed key's model call, within the budgets, and its completion stored with its usage. */
  private async call(tenantId: string, key: string, claim: string, call: PreparedCall, quota: TokenQuota): Promise<CompletionResult> {
    const budget = tokenBudget({
      tenantId,
      memberId: this.principal.userId,
      quota,
      limits: this.deps.limits,
      refused: (limit) => this.deps.metrics.limitRejections.inc({ limit, code: ErrorCode.QUOTA_EXCEEDED }),
    });
    let completion: RoutedCompletion;
    try {
      await budget.reserve(call.request.promptTokens + call.request.maxTokens);
      completion = await this.routed(call);
    } catch (error) {
      await budget.close(0).catch((failure: unknown) => this.log.warn({ err: failure }, "could not release a completion's budgets"));
      await this.db
        .withTenant(tenantId, (tx) => store.dropClaim(tx, key, claim))
        .catch((failure: unknown) => this.log.warn({ err: failure }, 'could not give up the claim of a failed completion'));
      throw this.refusal(error);
    }

    const { model, promptTokens, completionTokens } = completion;
    this.deps.metrics.tokens.inc({ model, kind: 'prompt' }, promptTokens);
    this.deps.metrics.tokens.inc({ model, kind: 'completion' }, completionTokens);
    // A limit store that failed must not lose a completion the model made; reservations left behind lapse on their own.
    await budget.close(promptTokens + completionTokens).catch((error: unknown) => this.log.warn({ err: error }, "could not settle a completion's budgets"));

    const done = {
      model,
      content: completion.content,
      toolCalls: completion.toolCalls,
      promptTokens,
      completionTokens,
      cost: this.deps.models.cost(model, completion),
    };
    const finished = await this.db.withTenant(tenantId, async (tx) => {
      const row = await store.finishCompletion(tx, key, claim, done);
      if (!row) return store.completionByKey(tx, key);
      const { userId = null, isolation } = this.principal;
      for (const [metric, quantity] of [['PROMPT_TOKENS', promptTokens], ['COMPLETION_TOKENS', completionTokens]] as const) {
        if (quantity <= 0) continue;
        await writeEvent(tx, USAGE_TOPIC, usageEvent(tenantId, { metric, quantity, model, userId, isolation }, usageEventId(tenantId, key, metric)));
      }
      return row;
    });
    this.deps.outbox.notify();
    if (finished?.status === 'DONE' && finished.claim === claim) return resultOf(finished);
    // Our claim went stale and another call took the key over: what it stored (or will) is the key's completion.
    this.log.warn({ idempotencyKey: key }, 'a completion finished after its claim was taken over; its usage is not recorded again');
    return finished?.status === 'DONE' ? resultOf(finished) : { ...done };
  }

  private routed(call: PreparedCall): Promise<RoutedCompletion> {
    const requested = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': call.model ?? `strategy:${call.strategy}` };
    return traced('gen_ai chat', { kind: SpanKind.CLIENT, attributes: requested }, async (span) => {
      const completion = await this.deps.models.complete({ ...call.request, signal: new AbortController().signal }, { model: call.model, strategy: call.strategy });
      span?.setAttributes({
        'gen_ai.response.model': completion.model,
        'gen_ai.usage.input_tokens': completion.promptTokens,
        'gen_ai.usage.output_tokens': completion.completionTokens,
      });
      return completion;
    });
  }

  /** What the caller is told: our own errors as they are, no model able to answer as MODEL_UNAVAILABLE. */
  private refusal(error: unknown): Error {
    if (error instanceof AppError) return error;
    if (this.deps.models.isUnavailable(error)) {
      // The details (endpoints, upstream messages) are for the operator's log, not the caller.
      this.log.warn({ err: error }, 'the model call failed');
      return new AppError(MODEL_UNAVAILABLE as ErrorCode, 'no model could answer just now; try again later');
    }
    return error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * The messages as the model port takes them; BAD_USER_INPUT naming the message for one that is not
 * well-formed: system and user messages have content and nothing else; an assistant message has content or
 * tool calls (with distinct ids), no toolCallId; a tool message has content and the toolCallId of a call an
 * earlier assistant message made.
 */
function conversationOf(messages: CheckedInput['messages']): ConversationMessage[] {
  const calls = new Set<string>();
  return messages.map((message, i): ConversationMessage => {
    const at = (field: string, problem: string) => badUserInput(`messages.${i}.${field}: ${problem}`, `messages.${i}.${field}`);
    const toolCalls = message.toolCalls ?? [];
    if (message.role !== 'assistant' && toolCalls.length > 0) throw at('toolCalls', `only an assistant message calls tools, not a ${message.role} message`);
    if (message.role !== 'tool' && message.toolCallId != null) throw at('toolCallId', `only a tool message answers a tool call, not a ${message.role} message`);
    switch (message.role) {
      case 'system':
      case 'user':
        if (message.content == null) throw at('content', `a ${message.role} message needs content`);
        return { role: message.role, content: message.content };
      case 'assistant': {
        if (message.content == null && toolCalls.length === 0) throw at('content', 'an assistant message needs content or tool calls');
        const own = new Set<string>();
        for (const call of toolCalls) {
          if (own.has(call.id)) throw at('toolCalls', `the tool call id "${call.id}" appears twice`);
          own.add(call.id);
          calls.add(call.id);
        }
        return toolCalls.length > 0 ? { role: 'assistant', content: message.content ?? null, toolCalls } : { role: 'assistant', content: message.content ?? null };
      }
      case 'tool':
        if (message.toolCallId == null) throw at('toolCallId', 'a tool message needs the id of the tool call it answers');
        if (!calls.has(message.toolCallId)) throw at('toolCallId', `no earlier assistant message called a tool with id "${message.toolCallId}"`);
        if (message.content == null) throw at('content', 'a tool message needs content (the tool result)');
        return { role: 'tool', content: message.content, toolCallId: message.toolCallId };
    }
  });
}

/** One id per tenant, key and metric: the usage of a key's completion counts once, however often it is written. */
const usageEventId = (tenantId: string, key: string, metric: string) => uuidOf(`chat-completion-usage:${tenantId}:${key}:${metric}`);

function resultOf(row: StoredCompletion): CompletionResult {
  return {
    content: row.content,
    toolCalls: row.toolCalls,
    model: row.model ?? 'unknown',
    promptTokens: row.promptTokens,
    completionTokens: row.completionTokens,
    cost: row.cost,
  };
}
