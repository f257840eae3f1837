/**
 * What the model router tests build on: models served by the fake OpenAI server, a router over them, a request
 * with one passage, and a routed stream run to its end and read back (who answered, what text).
 */
import assert from 'node:assert/strict';
import { OpenAIChatModel } from '../src/models/openai-chat.ts';
import type { ChatMessage, CompletionRequest } from '../src/models/port.ts';
import { ModelRegistry, type ModelSpec, type RegisteredModel } from '../src/models/registry.ts';
import { ModelRouter, type ModelRouterOptions, type RouteOptions, type RoutedChunk } from '../src/models/router.ts';
import { countMessageTokens } from '../src/models/tokens.ts';
import type { FakeOpenAI } from './fake-openai.ts';

type Pricing = Partial<Pick<ModelSpec, 'costPer1kPromptTokens' | 'costPer1kCompletionTokens' | 'quality' | 'contextWindow'>>;

/** A model served by the fake under its own name. */
export function remote(fake: FakeOpenAI, name: string, pricing: Pricing = {}): RegisteredModel {
  const spec: ModelSpec = {
    name,
    provider: 'openai',
    costPer1kPromptTokens: 0.001,
    costPer1kCompletionTokens: 0.002,
    contextWindow: 16_000,
    quality: 3,
    ...pricing,
  };
  return { spec, model: new OpenAIChatModel({ name, model: name, baseURL: fake.baseURL, apiKey: 'sk-test' }) };
}

export function routerOf(models: RegisteredModel[], options: ModelRouterOptions = {}): ModelRouter {
  return new ModelRouter(new ModelRegistry(models), { firstTokenTimeoutMs: 2_000, ...options });
}

export function request(overrides: Partial<CompletionRequest> = {}): CompletionRequest {
  const question = 'How many days of paid leave do employees get?';
  const passages = [{ n: 1, title: 'Leave policy', text: 'Employees get 25 days of paid leave per year. Unused days expire in March.' }];
  const messages: ChatMessage[] = overrides.messages ?? [
    { role: 'system', content: `Answer from the passages and cite them.\n\n[1] Leave policy\n${passages[0]!.text}` },
    { role: 'user', content: question },
  ];
  return {
    messages,
    promptTokens: countMessageTokens(messages),
    question,
    passages,
    maxTokens: 100,
    signal: new AbortController().signal,
    ...overrides,
  };
}

interface Outcome {
  chunks: RoutedChunk[];
  error: unknown;
}

export async function run(router: ModelRouter, req: CompletionRequest = request(), options: RouteOptions = {}): Promise<Outcome> {
  const chunks: RoutedChunk[] = [];
  try {
    for await (const chunk of router.stream(req, options)) chunks.push(chunk);
    return { chunks, error: undefined };
  } catch (error) {
    return { chunks, error };
  }
}

export function answeredBy(outcome: Outcome): string | undefined {
  assert.equal(outcome.error, undefined, `expected an answer, got ${String(outcome.error)}`);
  const first = outcome.chunks[0];
  return first?.kind === 'model' ? first.name : undefined;
}

export function textOf(outcome: Outcome): string {
  return outcome.chunks.map((chunk) => (chunk.kind === 'token' ? chunk.text : '')).join('');
}

export const answer = (name: string) => ({ kind: 'answer' as const, tokens: [`${name} `, 'says ', '25 ', 'days ', '[1].'] });
