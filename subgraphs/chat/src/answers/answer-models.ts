/**
 * The model registry, router and token counting, as an answer uses them (generate.ts's AnswerModels); the
 * registry and router themselves too, for completions (completions/completion-models.ts) to share: one set of
 * circuits and latencies for every model call the subgraph makes.
 */
import type { Config } from '@jarvis/platform/config';
import type { StoredCitation } from '../messages/store.ts';
import type { ChatMessage, CompletionRequest } from '../models/port.ts';
import { cost, createModelRegistry, type ModelRegistry } from '../models/registry.ts';
import { AllModelsFailedError, ModelRouter, StreamBrokenError } from '../models/router.ts';
import { countTokens, fitToBudget } from '../models/tokens.ts';
import type { AnswerModels, Prompt } from './generate.ts';

const SYSTEM_PROMPT = [
  'You answer questions for the members of an organisation from the numbered passages of its knowledge base below.',
  'Use only those passages. Cite each statement with the passage number in brackets, like [2].',
  'If the passages do not contain the answer, say that you could not find it in the knowledge base.',
].join(' ');

/** Tokens kept for the answer, at most a quarter of a model's window. */
const MAX_ANSWER_TOKENS = 1024;

export function answerModels(config: Config): AnswerModels & { registry: ModelRegistry; router: ModelRouter } {
  const registry = createModelRegistry({
    chatModels: config.CHAT_MODELS,
    openaiBaseURL: config.OPENAI_BASE_URL,
    openaiApiKey: config.OPENAI_API_KEY,
    localTokenDelayMs: config.CHAT_LOCAL_TOKEN_DELAY_MS,
  });
  const router = new ModelRouter(registry, { defaultStrategy: config.CHAT_ROUTING_STRATEGY, firstTokenTimeoutMs: config.CHAT_FIRST_TOKEN_TIMEOUT_MS });
  // A question that names no model is fitted to the smallest window, so every candidate can take it.
  const windowOf = (model?: string) =>
    model ? registry.get(model)!.spec.contextWindow : Math.min(...registry.specs.map((spec) => spec.contextWindow));

  return {
    registry,
    router,
    prompt({ question, passages, history, model }) {
      const contextWindow = windowOf(model);
      const maxTokens = Math.min(MAX_ANSWER_TOKENS, Math.floor(contextWindow / 4));
      const fitted = fitToBudget({
        systemPrompt: SYSTEM_PROMPT,
        passages: passages.map(({ n, title, text }) => ({ n, title, text })),
        history: history as ChatMessage[],
        question,
        contextWindow,
        maxTokens,
      });
      const kept = new Set(fitted.passages.map((passage) => passage.n));
      const request: Omit<CompletionRequest, 'signal'> = {
        messages: fitted.messages,
        promptTokens: fitted.promptTokens,
        question,
        passages: fitted.passages,
        maxTokens,
      };
      return {
        text: fitted.messages.map((message) => `${message.role}: ${message.content}`).join('\n'),
        passages: passages.filter((passage: StoredCitation) => kept.has(passage.n)),
        promptTokens: fitted.promptTokens,
        maxTokens,
        request,
      } satisfies Prompt;
    },
    stream(prompt, { model, strategy, signal }) {
      const request = { ...prompt.request, signal };
      return router.stream(request, { strategy, models: model ? [model] : undefined });
    },
    cost(model, usage) {
      const spec = registry.get(model)?.spec;
      return spec ? cost(spec, usage) : 0;
    },
    countTokens,
    failureCode(error) {
      if (error instanceof StreamBrokenError) return 'STREAM_BROKEN';
      if (error instanceof AllModelsFailedError) return 'MODEL_UNAVAILABLE';
      return undefined;
    },
  };
}
