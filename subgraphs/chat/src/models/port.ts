/**
 * The chat model port: a model turns a prepared request into a stream of text tokens, ending with what the
 * call used. Providers (an OpenAI-compatible endpoint, the local extractive answerer) implement it; the
 * router (router.ts) chooses among them.
 */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A passage the answer may cite as [n]. */
export interface ContextPassage {
  n: number;
  title: string;
  text: string;
}

export interface CompletionRequest {
  /** System prompt (with numbered passages) + history + question, already fitted to the context window. */
  messages: ChatMessage[];
  /**
   * `countMessageTokens(messages)` (tokens.ts), counted once where the prompt is fitted (`fitToBudget`'s
   * `promptTokens`): the router's context-window check and COST ordering, and the usage a provider reports
   * when it has no count of its own, use it.
   */
  promptTokens: number;
  /** The user's question, plain. */
  question: string;
  /** What messages cite, for providers that work from passages (the local answerer). */
  passages: ContextPassage[];
  maxTokens: number;
  temperature?: number;
  /** Aborting must cancel the upstream HTTP call. */
  signal: AbortSignal;
}

export type CompletionChunk =
  | { kind: 'token'; text: string }
  | { kind: 'usage'; promptTokens: number; completionTokens: number };

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * A model. `stream` yields the answer's text as `token` chunks in order and one `usage` chunk once the
 * answer is complete; it throws when the call fails (and the abort signal's reason when the request is aborted).
 */
export interface ChatModel {
  readonly name: string;
  stream(request: CompletionRequest): AsyncIterable<CompletionChunk>;
}

/** What aborting `signal` throws: its reason, or a standard AbortError when it has none that is an Error. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException('The operation was aborted.', 'AbortError');
}
