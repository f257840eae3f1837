/**
 * Token counting for context budgets, with `gpt-tokenizer` (pure JavaScript, its BPE ranks bundled in the
 * package: nothing is fetched). It counts with `cl100k_base`: on English prose it is within 1% of
 * `o200k_base` (the GPT-4o/GPT-5 encoding) and counts more, never fewer, on most other scripts, so a budget
 * built on it errs on the safe side; and it loads in about a fifth of the time (~0.4 s against ~1.8 s).
 * It is loaded on first use, so importing this module costs nothing; `loadTokenizer()` loads it ahead of time.
 *
 * Counts are estimates for models with other tokenizers; budgets leave the model's own count to the model.
 */
import { createRequire } from 'node:module';
import type * as Encoding from 'gpt-tokenizer/encoding/cl100k_base';
import type { ChatMessage, ContextPassage, ConversationMessage, ToolCall, ToolDefinition } from './port.ts';

type Tokenizer = typeof Encoding;

let tokenizer: Tokenizer | undefined;

/** Loads the encoding now rather than on the first count (a server may call it at start-up). */
export function loadTokenizer(): void {
  tokenizer ??= createRequire(import.meta.url)('gpt-tokenizer/encoding/cl100k_base') as Tokenizer;
}

/** Special tokens in user text ("<|endoftext|>") are counted as the ordinary text they are, never refused. */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  loadTokenizer();
  return tokenizer!.countTokens(text, PLAIN_TEXT);
}

/**
 * OpenAI's chat format costs a few tokens per message besides its content (role and delimiters) and a few
 * to prime the reply: 4 and 3 here, the published figures for its chat models.
 */
const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_REPLY = 3;

/** The prompt tokens of a chat request: its messages' contents and their framing. */
export function countMessageTokens(messages: readonly ChatMessage[]): number {
  return messages.reduce((sum, message) => sum + TOKENS_PER_MESSAGE + countTokens(message.content), TOKENS_PER_REPLY);
}

/**
 * The prompt tokens of a conversation with tools: each message's content and framing as above, each tool call
 * it carries (its id, name and arguments) and each tool answer's call id, plus the tools on offer as the JSON
 * they are sent as. An estimate, as every count here is: a provider's own count replaces it when it reports one.
 */
export function countConversationTokens(messages: readonly ConversationMessage[], tools: readonly ToolDefinition[] = []): number {
  const ofMessages = messages.reduce((sum, message) => {
    let tokens = TOKENS_PER_MESSAGE + countTokens(message.content ?? '');
    if (message.role === 'assistant') tokens += countToolCallTokens(message.toolCalls ?? []);
    if (message.role === 'tool') tokens += countTokens(message.toolCallId);
    return sum + tokens;
  }, TOKENS_PER_REPLY);
  return ofMessages + tools.reduce((sum, tool) => sum + countTokens(JSON.stringify({ type: 'function', function: tool })), 0);
}

/** The tokens of tool calls as a model writes them: each one's id, name and arguments. */
export function countToolCallTokens(calls: readonly ToolCall[]): number {
  return calls.reduce((sum, call) => sum + TOKENS_PER_MESSAGE + countTokens(call.id) + countTokens(call.name) + countTokens(call.arguments), 0);
}

/** How a passage appears in the system prompt: its number, the one an answer cites, its title and text. */
function formatPassage(passage: ContextPassage): string {
  return `[${passage.n}] ${passage.title}\n${passage.text}`;
}

/** The system prompt followed by the passages, a blank line between each. */
export function systemContent(systemPrompt: string, passages: readonly ContextPassage[]): string {
  return [systemPrompt, ...passages.map(formatPassage)].filter((part) => part.length > 0).join('\n\n');
}

export interface BudgetInput {
  systemPrompt: string;
  /** Best first. */
  passages: readonly ContextPassage[];
  /** Oldest first. */
  history: readonly ChatMessage[];
  question: string;
  contextWindow: number;
  /** Tokens kept free for the answer. */
  maxTokens: number;
}

export interface FittedContext {
  /** System (prompt + kept passages; left out when both are empty), kept history, then the question as the user's message. */
  messages: ChatMessage[];
  /** The passages kept: the best ones, a prefix of those given, numbers unchanged. */
  passages: ContextPassage[];
  /** The history kept: the most recent messages, oldest first. */
  history: ChatMessage[];
  /** `countMessageTokens(messages)`. */
  promptTokens: number;
  /** `contextWindow - maxTokens`. */
  budget: number;
  /** False when the system prompt and the question alone exceed the budget (they are kept all the same). */
  fits: boolean;
}

/**
 * Keeps what fits in `contextWindow - maxTokens`: the system prompt and the question always, then passages
 * best first, then history from the most recent back. Each stops at the first item that does not fit, so
 * the passages kept are the best ones and the history kept is an unbroken run up to the question.
 */
export function fitToBudget(input: BudgetInput): FittedContext {
  const budget = input.contextWindow - input.maxTokens;
  const question: ChatMessage = { role: 'user', content: input.question };

  // The system message's framing and the reply's priming are counted once here; each passage adds its
  // text and the blank line joining it.
  let used = TOKENS_PER_REPLY + 2 * TOKENS_PER_MESSAGE + countTokens(input.systemPrompt) + countTokens(input.question);
  const fits = used <= budget;

  const passages: ContextPassage[] = [];
  for (const passage of input.passages) {
    const cost = countTokens(`\n\n${formatPassage(passage)}`);
    if (used + cost > budget) break;
    passages.push(passage);
    used += cost;
  }

  const history: ChatMessage[] = [];
  for (let i = input.history.length - 1; i >= 0; i--) {
    const message = input.history[i]!;
    const cost = TOKENS_PER_MESSAGE + countTokens(message.content);
    if (used + cost > budget) break;
    history.unshift(message);
    used += cost;
  }

  // Token counts do not quite add up across the seams of joined text: the whole is counted again, and
  // should it still be over, the oldest history, then the lowest passage, goes until it fits.
  let messages = assembled(input.systemPrompt, passages, history, question);
  let promptTokens = countMessageTokens(messages);
  while (promptTokens > budget && history.length + passages.length > 0) {
    if (history.length > 0) history.shift();
    else passages.pop();
    messages = assembled(input.systemPrompt, passages, history, question);
    promptTokens = countMessageTokens(messages);
  }
  return { messages, passages, history, promptTokens, budget, fits };
}

function assembled(systemPrompt: string, passages: ContextPassage[], history: ChatMessage[], question: ChatMessage): ChatMessage[] {
  const system = systemContent(systemPrompt, passages);
  return [...(system ? [{ role: 'system' as const, content: system }] : []), ...history, question];
}
