/** The model registry and router as a completion uses them: the same router (circuits, latencies) as answers. */
import type { Usage, ToolCompletionRequest } from '../models/port.ts';
import { cost, type ModelRegistry } from '../models/registry.ts';
import { AllModelsFailedError, type ModelRouter, type RoutedCompletion, type RoutingStrategy } from '../models/router.ts';

/** Tokens kept for a completion that names no maxTokens, at most a quarter of a model's window (as answers). */
const DEFAULT_MAX_TOKENS = 1024;

export interface CompletionModels {
  has(model: string): boolean;
  /** maxTokens when the caller gives none: for the named model, or for the smallest window (every candidate takes it). */
  defaultMaxTokens(model?: string): number;
  /** The most tokens (prompt and completion) a call may need: the named model's window, or the largest. */
  contextWindow(model?: string): number;
  /** Routed: the named model only, or the candidates in the strategy's order. */
  complete(request: ToolCompletionRequest, choice: { model?: string | undefined; strategy: RoutingStrategy }): Promise<RoutedCompletion>;
  cost(model: string, usage: Usage): number;
  /** No model could answer (every candidate failed, timed out, or was skipped). */
  isUnavailable(error: unknown): boolean;
}

export function completionModels(registry: ModelRegistry, router: ModelRouter): CompletionModels {
  const windows = registry.specs.map((spec) => spec.contextWindow);
  const windowOf = (model: string | undefined, pick: (...values: number[]) => number) =>
    model ? registry.get(model)!.spec.contextWindow : pick(...windows);
  return {
    has: (model) => registry.get(model) !== undefined,
    defaultMaxTokens: (model) => Math.min(DEFAULT_MAX_TOKENS, Math.floor(windowOf(model, Math.min) / 4)),
    contextWindow: (model) => windowOf(model, Math.max),
    complete: (request, { model, strategy }) => router.complete(request, { strategy, models: model ? [model] : undefined }),
    cost(model, usage) {
      const spec = registry.get(model)?.spec;
      return spec ? cost(spec, usage) : 0;
    },
    isUnavailable: (error) => error instanceof AllModelsFailedError,
  };
}
