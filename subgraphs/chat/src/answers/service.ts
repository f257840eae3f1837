/** Asking, and following an answer as it is written. */
import { randomUUID } from 'node:crypto';
import { requireTenant, type Principal } from '@jarvis/platform/contracts';
import type { Database } from '@jarvis/platform/db';
import { badUserInput, notFound } from '@jarvis/platform/errors';
import type { Logger } from '@jarvis/platform/logger';
import { memberAllowance, tenantQuota } from '@jarvis/platform/quota-overrides';
import { checkInput, parseInput } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { AskInput, SubscriptionAnswerStreamArgs } from '../generated/schema-types.ts';
import type { ConversationService } from '../conversations/service.ts';
import type { Conversation } from '../conversations/store.ts';
import * as messages from '../messages/store.ts';
import type { Message } from '../messages/store.ts';
import type { AnswerEvent } from './events-store.ts';
import type { RoutingStrategy } from '../models/router.ts';
import { generateAnswer, type AnswerDeps, type HistoryTurn } from './generate.ts';
import { answerStream } from './stream.ts';

const askChecks = z.object({
  conversationId: z.uuid().nullish(),
  question: z.string().trim().min(1, 'must not be empty').max(8000, 'at most 8000 characters'),
  knowledgeBaseIds: z.array(z.uuid()).max(100, 'at most 100 knowledge bases').nullish(),
  model: z.string().min(1).nullish(),
});

const streamInput = z.object({ messageId: z.uuid(), afterSeq: z.number().int().min(0, 'at least 0').nullish() });

/** Earlier turns sent with a question, before the context budget trims them. */
const HISTORY_TURNS = 20;

export interface AnswerServiceDeps extends AnswerDeps {
  /** Model names the registry knows. */
  modelNames: ReadonlySet<string>;
  defaultStrategy: RoutingStrategy;
  heartbeatMs: number;
}

export interface AskPayload {
  conversation: Conversation;
  question: Message;
  answer: Message;
}

export class AnswerService {
  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly conversations: ConversationService,
    private readonly deps: AnswerServiceDeps,
    private readonly log: Logger,
  ) {}

  async ask(asked: AskInput): Promise<AskPayload> {
    const tenantId = requireTenant(this.principal);
    const input = checkInput(askChecks, asked);
    if (input.model && !this.deps.modelNames.has(input.model)) throw badUserInput(`no model "${input.model}" in the registry`, 'model');
    const conversation = input.conversationId
      ? await this.conversations.requireConversation(input.conversationId)
      : await this.conversations.start(input.question.slice(0, 80));
    const history = await this.history(conversation);
    const memberId = this.principal.userId;
    const { question, answer, quota, allowance } = await this.db.withTenant(tenantId, async (tx) => {
      const base = { tenantId, conversationId: conversation.id, authorId: memberId ?? null };
      return {
        question: await messages.insertMessage(tx, { ...base, id: randomUUID(), role: 'USER', content: input.question, status: 'DONE' }),
        answer: await messages.insertMessage(tx, { ...base, id: randomUUID(), role: 'ASSISTANT', content: '', status: 'STREAMING' }),
        quota: await tenantQuota(tx, this.principal.plan),
        allowance: memberId ? await memberAllowance(tx, memberId) : null,
      };
    });
    const job = {
      principal: this.principal,
      tenantId,
      messageId: answer.id,
      question: input.question,
      history,
      knowledgeBaseIds: input.knowledgeBaseIds ?? null,
      model: input.model ?? undefined,
      strategy: input.strategy ?? this.deps.defaultStrategy,
      quota: { tokensPerDay: quota.tokensPerDay, tokensPerMonth: quota.tokensPerMonth, concurrentStreams: quota.concurrentStreams, memberTokensPerDay: allowance },
    };
    generateAnswer(job, { ...this.deps, db: this.db }).catch((error: unknown) => this.log.error({ err: error, messageId: answer.id }, 'answer job crashed'));
    return { conversation, question, answer };
  }

  /** The answer's events after `afterSeq`; NOT_FOUND unless the answer is in one of the caller's conversations. */
  async stream(args: SubscriptionAnswerStreamArgs): Promise<AsyncIterableIterator<AnswerEvent>> {
    const tenantId = requireTenant(this.principal);
    const { messageId, afterSeq } = parseInput(streamInput, args);
    const message = await this.conversations.message(messageId);
    if (!message || message.role !== 'ASSISTANT') throw notFound(`no answer ${messageId}`);
    return answerStream({
      db: this.db,
      tenantId,
      messageId,
      afterSeq: afterSeq ?? 0,
      signals: this.deps.signals,
      heartbeatMs: this.deps.heartbeatMs,
      watchEveryMs: Math.max(50, this.deps.abandonAfterMs / 3),
      log: this.log,
    });
  }

  private async history(conversation: Conversation): Promise<HistoryTurn[]> {
    const earlier = await this.conversations.messagesOf(conversation, HISTORY_TURNS);
    return earlier
      .filter((message) => message.status === 'DONE' && message.content)
      .map((message) => ({ role: message.role === 'USER' ? 'user' : 'assistant', content: message.content }));
  }
}
