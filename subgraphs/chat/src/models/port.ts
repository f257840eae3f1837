/**
 * The chat model port: a model turns a prepared request into a stream of text tokens, ending with what the
 * call used (`stream`, for answers), or completes a conversation that may offer tools in one call, answering
 * with text, tool calls or both (`complete`, for workflow and agent runs). Providers (an OpenAI-compatible
 * endpoint, the local extractive answerer) implement both; the router (router.ts) chooses among them.
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

/** A function the model called, as the model wrote it: `arguments` is JSON text, not checked against the schema. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A function the model may call. */
export interface ToolDefinition {
  name: string;
  description?: string | undefined;
  /** JSON Schema of its arguments (an object schema). */
  parameters: Record<string, unknown>;
}

/**
 * A message of a conversation with tools: the assistant's turns may call tools (`toolCalls`, its text then
 * optional), and each call is answered by a `tool` message naming the call it answers.
 */
export type ConversationMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; toolCalls?: ToolCall[] | undefined }
  | { role: 'tool'; content: string; toolCallId: string };

/**
 * `complete`'s request: the conversation as the caller keeps it (not fitted here), and the tools on offer.
 * `promptTokens` is `countConversationTokens(messages, tools)` (tokens.ts).
 */
export interface ToolCompletionRequest extends Omit<CompletionRequest, 'messages' | 'question' | 'passages'> {
  messages: ConversationMessage[];
  /** Empty: the model answers with text. */
  tools: ToolDefinition[];
}

/** What one `complete` call produced and used. */
export interface Completion extends Usage {
  /** The assistant's text; null when it only called tools. */
  content: string | null;
  toolCalls: ToolCall[];
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
 * answer is complete; `complete` answers a conversation, tools offered, in one call. Both throw when the call
 * fails (and the abort signal's reason when the request is aborted).
 */
export interface ChatModel {
  readonly name: string;
  stream(request: CompletionRequest): AsyncIterable<CompletionChunk>;
  complete(request: ToolCompletionRequest): Promise<Completion>;
}

/** What aborting `signal` throws: its reason, or a standard AbortError when it has none that is an Error. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException('The operation was aborted.', 'AbortError');
}
