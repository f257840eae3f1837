import { internalAuthSecret } from '@jarvis/platform/config';
import { principalSigner } from '@jarvis/platform/contracts';
import { openLimitStore } from '@jarvis/platform/limits';
import { memberAllowancesSubscription, QUOTA_OVERRIDES_MIGRATIONS, quotaOverridesSubscription } from '@jarvis/platform/quota-overrides';
import { defineSubgraph, type ResourceServices } from '@jarvis/platform/subgraph';
import { subgraphClient, subgraphUrl } from '@jarvis/platform/subgraph-client';
import { answerModels } from './answers/answer-models.ts';
import { ANSWER_TOUCH_MS } from './answers/generate.ts';
import { chatMetrics } from './answers/metrics.ts';
import { startAnswerSweep } from './answers/sweep.ts';
import { loadTokenizer } from './models/tokens.ts';
import { knowledgeRetrieval } from './answers/retrieval.ts';
import { AnswerService, type AnswerServiceDeps } from './answers/service.ts';
import { openAnswerSignals } from './answers/signals.ts';
import { openInferenceCache } from './cache/index.ts';
import { completionModels, type CompletionModels } from './completions/completion-models.ts';
import { CompletionService } from './completions/service.ts';
import { ConversationService } from './conversations/service.ts';
import type { ChatContext } from './context.ts';
import { resolvers } from './resolvers.ts';

/** Events written per batch while an answer streams: a few milliseconds' worth of tokens. */
const FLUSH_MS = 15;

type ChatResources = Omit<AnswerServiceDeps, 'db' | 'log'> & { completionModels: CompletionModels };

async function openChatResources({ db, config, log, outbox, metrics }: ResourceServices): Promise<ChatResources & { close(): Promise<void> }> {
  const models = answerModels(config);
  // Loading the tokenizer takes a moment; at start-up, not in the first answer.
  loadTokenizer();
  const signals = await openAnswerSignals(db, log);
  const limits = openLimitStore({ redisUrl: config.REDIS_URL, prefix: `${config.REDIS_KEY_PREFIX}limits:`, failureMode: config.LIMITS_FAILURE_MODE, log });
  const cache = openInferenceCache({
    redisUrl: config.REDIS_URL,
    prefix: `${config.REDIS_KEY_PREFIX}chat-cache:`,
    ttlSeconds: config.CHAT_CACHE_TTL_SECONDS,
    semanticThreshold: config.CHAT_SEMANTIC_CACHE_THRESHOLD,
    log,
  });
  const sweeper = startAnswerSweep({ db, log, staleAfterMs: 6 * ANSWER_TOUCH_MS, everyMs: 2 * ANSWER_TOUCH_MS });
  return {
    models,
    completionModels: completionModels(models.registry, models.router),
    modelNames: new Set(models.registry.specs.map((spec) => spec.name)),
    defaultStrategy: config.CHAT_ROUTING_STRATEGY,
    cache,
    retrieve: knowledgeRetrieval(subgraphClient({ name: 'knowledge', url: subgraphUrl(config, 'knowledge'), signer: principalSigner(internalAuthSecret(config)) })),
    signals,
    limits,
    outbox,
    abandonAfterMs: config.CHAT_ABANDON_MS,
    heartbeatMs: config.CHAT_HEARTBEAT_MS,
    flushMs: FLUSH_MS,
    topK: config.CHAT_TOP_K,
    metrics: chatMetrics(metrics),
    async close() {
      sweeper.stop();
      await signals.close();
      await cache.close();
      await limits.close();
    },
  };
}

export const chatSubgraph = defineSubgraph<ChatContext, ChatResources>({
  name: 'chat',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  moduleMigrations: [QUOTA_OVERRIDES_MIGRATIONS],
  resources: openChatResources,
  outbox: true,
  subscriptions: [quotaOverridesSubscription('chat-quotas'), memberAllowancesSubscription('chat-allowances')],
  context: (base, { resources }) => {
    const conversations = new ConversationService(base.db, base.principal);
    const { completionModels: models, limits, outbox, defaultStrategy, metrics } = resources;
    return {
      ...base,
      conversations,
      answers: new AnswerService(base.db, base.principal, conversations, { ...resources, db: base.db, log: base.log }, base.log),
      completions: new CompletionService(base.db, base.principal, { models, limits, outbox, defaultStrategy, metrics }, base.log),
    };
  },
});
