/**
 * The models the chat service may answer with, from configuration.
 *
 * `CHAT_MODELS` is a JSON array; each element:
 *
 * ```jsonc
 * {
 *   "name": "gpt-4o-mini",                // unique; what routing, usage and answers call the model
 *   "provider": "openai",                 // "openai": an OpenAI-compatible endpoint (OPENAI_BASE_URL, OPENAI_API_KEY)
 *                                         // "local": the offline extractive answerer
 *   "model": "gpt-4o-mini",               // optional: the model id sent upstream; defaults to name (openai only)
 *   "costPer1kPromptTokens": 0.00015,     // USD
 *   "costPer1kCompletionTokens": 0.0006,  // USD
 *   "contextWindow": 128000,              // tokens, prompt and answer together
 *   "quality": 4,                         // 1 (lowest) to 5, for the QUALITY strategy
 *   "maxTokensField": "max_tokens"        // optional (openai only): for servers that do not know max_completion_tokens
 * }
 * ```
 *
 * Unknown fields are refused, so a misspelt one is not silently ignored. Without `CHAT_MODELS` there is one
 * model, `local-extractive`: the local answerer, free, context window 8192, quality 1.
 * An `openai` model needs OPENAI_BASE_URL or OPENAI_API_KEY (with only the key, OpenAI's own endpoint).
 */
import { z } from 'zod';
import { LocalAnswerer } from './local-answerer.ts';
import { OpenAIChatModel } from './openai-chat.ts';
import type { ChatModel, Usage } from './port.ts';

const modelSpecSchema = z.strictObject({
  name: z.string().trim().min(1),
  provider: z.enum(['openai', 'local']),
  model: z.string().trim().min(1).optional(),
  costPer1kPromptTokens: z.number().min(0),
  costPer1kCompletionTokens: z.number().min(0),
  contextWindow: z.number().int().positive(),
  quality: z.number().int().min(1).max(5),
  maxTokensField: z.enum(['max_completion_tokens', 'max_tokens']).optional(),
});

const modelSpecsSchema = z
  .array(modelSpecSchema)
  .min(1, 'at least one model')
  .superRefine((specs, ctx) => {
    const seen = new Set<string>();
    specs.forEach((spec, index) => {
      if (seen.has(spec.name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `"${spec.name}" is named twice` });
      seen.add(spec.name);
    });
  });

export type ModelSpec = z.infer<typeof modelSpecSchema>;

export const DEFAULT_MODEL_SPECS: readonly ModelSpec[] = Object.freeze([
  { name: 'local-extractive', provider: 'local', costPer1kPromptTokens: 0, costPer1kCompletionTokens: 0, contextWindow: 8192, quality: 1 },
]);

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

/** Parses `CHAT_MODELS`; undefined or blank gives `DEFAULT_MODEL_SPECS`. An invalid list throws, naming each problem. */
export function parseModelSpecs(json: string | undefined): ModelSpec[] {
  if (json === undefined || json.trim() === '') return DEFAULT_MODEL_SPECS.map((spec) => ({ ...spec }));
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new ModelConfigError(`CHAT_MODELS is not JSON: ${(error as Error).message}`);
  }
  const result = modelSpecsSchema.safeParse(value);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  CHAT_MODELS${issue.path.map((key) => `[${JSON.stringify(key)}]`).join('')}: ${issue.message}`);
    throw new ModelConfigError(`invalid CHAT_MODELS:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** What a call cost in USD. */
export function cost(model: Pick<ModelSpec, 'costPer1kPromptTokens' | 'costPer1kCompletionTokens'>, usage: Usage): number {
  return (usage.promptTokens * model.costPer1kPromptTokens + usage.completionTokens * model.costPer1kCompletionTokens) / 1000;
}

export interface RegisteredModel {
  spec: ModelSpec;
  model: ChatModel;
}

export interface ModelRegistryOptions {
  /** `CHAT_MODELS`. */
  chatModels?: string;
  /** `OPENAI_BASE_URL`; for `openai` models. */
  openaiBaseURL?: string;
  /** `OPENAI_API_KEY`; for `openai` models. */
  openaiApiKey?: string;
  /** Per-token delay of the local answerer (0 by default). */
  localTokenDelayMs?: number;
}

const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';

export class ModelRegistry {
  readonly models: readonly RegisteredModel[];
  private readonly byName: Map<string, RegisteredModel>;

  constructor(models: readonly RegisteredModel[]) {
    if (models.length === 0) throw new ModelConfigError('a model registry needs at least one model');
    this.byName = new Map(models.map((entry) => [entry.spec.name, entry]));
    if (this.byName.size !== models.length) throw new ModelConfigError('model names must be unique');
    for (const entry of models) {
      if (entry.model.name !== entry.spec.name) {
        throw new ModelConfigError(`model "${entry.model.name}" is registered as "${entry.spec.name}"`);
      }
    }
    this.models = Object.freeze([...models]);
  }

  get(name: string): RegisteredModel | undefined {
    return this.byName.get(name);
  }

  get specs(): ModelSpec[] {
    return this.models.map((entry) => entry.spec);
  }
}

/** The registry configuration describes: `createModelRegistry({ chatModels: config.CHAT_MODELS, openaiBaseURL: config.OPENAI_BASE_URL, … })`. */
export function createModelRegistry(options: ModelRegistryOptions = {}): ModelRegistry {
  const specs = parseModelSpecs(options.chatModels);
  return new ModelRegistry(specs.map((spec) => ({ spec, model: modelOf(spec, options) })));
}

function modelOf(spec: ModelSpec, options: ModelRegistryOptions): ChatModel {
  if (spec.provider === 'local') {
    return new LocalAnswerer({ name: spec.name, ...(options.localTokenDelayMs === undefined ? {} : { tokenDelayMs: options.localTokenDelayMs }) });
  }
  if (!options.openaiBaseURL && !options.openaiApiKey) {
    throw new ModelConfigError(`model "${spec.name}" uses provider openai: set OPENAI_BASE_URL (and OPENAI_API_KEY if the endpoint needs one)`);
  }
  return new OpenAIChatModel({
    name: spec.name,
    model: spec.model ?? spec.name,
    baseURL: options.openaiBaseURL ?? OPENAI_DEFAULT_BASE_URL,
    ...(options.openaiApiKey ? { apiKey: options.openaiApiKey } : {}),
    ...(spec.maxTokensField ? { maxTokensField: spec.maxTokensField } : {}),
  });
}
