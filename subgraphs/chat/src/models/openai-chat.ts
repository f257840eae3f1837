/**
 * A chat model over any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, Ollama, LiteLLM, …),
 * through the `openai` SDK: `stream: true` with `stream_options.include_usage`, so the server reports what
 * the call used in a last chunk; when it reports nothing, usage is estimated with the tokenizer (tokens.ts).
 *
 * The request's abort signal goes to the SDK, so aborting cancels the HTTP request (the connection is
 * closed and the server sees the client leave). The SDK does not retry (maxRetries 0): trying another model
 * is the router's job. A stream that ends without a finish reason was cut short and is an error, not a
 * short answer.
 *
 * `complete` makes one non-streaming call for a conversation with tools: the tools go as `tools` (type
 * `function`: name, description, parameters), the conversation's assistant tool calls as `tool_calls` and the
 * answers to them as `tool` messages with their `tool_call_id`; the reply's text and function tool calls come
 * back, with the usage the server reports (estimated with the tokenizer when it reports none).
 */
import { describeOpenAIError, endpointLabel, openAIClient, redactKey } from '@jarvis/platform/openai';
import { APIUserAbortError, type OpenAI } from 'openai';
import {
  abortReason,
  type ChatMessage,
  type ChatModel,
  type Completion,
  type CompletionChunk,
  type CompletionRequest,
  type ConversationMessage,
  type ToolCall,
  type ToolCompletionRequest,
  type ToolDefinition,
} from './port.ts';
import { countToolCallTokens, countTokens } from './tokens.ts';

type ChatCompletionMessageParam = OpenAI.Chat.Completions.ChatCompletionMessageParam;
type ChatCompletionTool = OpenAI.Chat.Completions.ChatCompletionTool;

export interface OpenAIChatModelOptions {
  /** The name the registry and router know the model by. */
  name: string;
  /** The model id sent upstream (`gpt-4o-mini`, `llama3.1:8b`). */
  model: string;
  /** The API root, `/chat/completions` is appended: `https://api.openai.com/v1`, `http://localhost:11434/v1`. */
  baseURL: string;
  /** Sent as `Authorization: Bearer …`; no header at all when absent, as local servers expect. */
  apiKey?: string;
  /**
   * The request field carrying the answer's token limit: `max_completion_tokens` (OpenAI's current one, the
   * only one its reasoning models accept) or `max_tokens` (for servers that know only the older field).
   */
  maxTokensField?: 'max_completion_tokens' | 'max_tokens';
  /** Until the response headers arrive; the router's first-token timeout is usually the tighter bound. */
  timeoutMs?: number;
}

const OPENAI_CHAT_DEFAULTS = { maxTokensField: 'max_completion_tokens', timeoutMs: 60_000 } as const;

/** A failed chat completions call; the message names the model and endpoint, never the API key. */
export class ModelProviderError extends Error {
  /** The HTTP status the server answered with, when it answered. */
  readonly status: number | undefined;

  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ModelProviderError';
    this.status = status;
  }
}

export class OpenAIChatModel implements ChatModel {
  readonly name: string;
  private readonly client: OpenAI;
  private readonly endpoint: string;

  constructor(private readonly options: OpenAIChatModelOptions) {
    this.name = options.name;
    this.endpoint = endpointLabel(options.baseURL, '/chat/completions');
    this.client = openAIClient({
      baseURL: options.baseURL,
      apiKey: options.apiKey,
      timeoutMs: options.timeoutMs ?? OPENAI_CHAT_DEFAULTS.timeoutMs,
      maxRetries: 0,
    });
  }

  async *stream(request: CompletionRequest): AsyncGenerator<CompletionChunk> {
    const { signal } = request;
    if (signal.aborted) throw abortReason(signal);
    const maxTokensField = this.options.maxTokensField ?? OPENAI_CHAT_DEFAULTS.maxTokensField;
    let text = '';
    let finished = false;
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.options.model,
          messages: request.messages,
          stream: true,
          stream_options: { include_usage: true },
          [maxTokensField]: request.maxTokens,
          ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
        },
        { signal },
      );
      for await (const chunk of stream) {
        for (const choice of chunk.choices ?? []) {
          if (choice.index !== 0) continue;
          const content = choice.delta?.content;
          if (content) {
            text += content;
            yield { kind: 'token', text: content };
          }
          if (choice.finish_reason) finished = true;
        }
        if (chunk.usage) {
          usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
        }
      }
    } catch (error) {
      throw this.wrapped(error, signal);
    }
    // The SDK ends the iteration quietly when the signal aborts mid-stream.
    if (signal.aborted) throw abortReason(signal);
    if (!finished) throw this.failure('the stream ended before the model finished its answer');
    yield { kind: 'usage', ...(usage ?? { promptTokens: request.promptTokens, completionTokens: countTokens(text) }) };
  }

  async complete(request: ToolCompletionRequest): Promise<Completion> {
    const { signal } = request;
    if (signal.aborted) throw abortReason(signal);
    const maxTokensField = this.options.maxTokensField ?? OPENAI_CHAT_DEFAULTS.maxTokensField;
    let response;
    try {
      response = await this.client.chat.completions.create(
        {
          model: this.options.model,
          messages: openAIMessages(request.messages),
          ...(request.tools.length > 0 ? { tools: request.tools.map(openAITool) } : {}),
          [maxTokensField]: request.maxTokens,
          ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
        },
        { signal },
      );
    } catch (error) {
      throw this.wrapped(error, signal);
    }
    if (signal.aborted) throw abortReason(signal);
    const message = response.choices?.find((choice) => choice.index === 0)?.message ?? response.choices?.[0]?.message;
    if (!message) throw this.failure('the response has no choice');
    const toolCalls: ToolCall[] = (message.tool_calls ?? []).flatMap((call) =>
      call.type === 'function' ? [{ id: call.id, name: call.function.name, arguments: call.function.arguments }] : [],
    );
    const content = message.content ?? null;
    const usage = response.usage
      ? { promptTokens: response.usage.prompt_tokens, completionTokens: response.usage.completion_tokens }
      : { promptTokens: request.promptTokens, completionTokens: countTokens(content ?? '') + countToolCallTokens(toolCalls) };
    return { content, toolCalls, ...usage };
  }

  private wrapped(error: unknown, signal: AbortSignal): Error {
    if (signal.aborted) return abortReason(signal);
    if (error instanceof APIUserAbortError) return abortReason(signal);
    const { reason, status } = describeOpenAIError(error, this.options.timeoutMs ?? OPENAI_CHAT_DEFAULTS.timeoutMs);
    return this.failure(reason, status, error instanceof Error ? error : undefined);
  }

  private failure(reason: string, status?: number, cause?: Error): ModelProviderError {
    const message = `chat completions request to ${this.endpoint} (model ${this.options.model}) failed: ${reason}`;
    return new ModelProviderError(redactKey(message, this.options.apiKey), status, cause ? { cause } : undefined);
  }
}

/** The conversation as the chat completions API takes it. */
export function openAIMessages(messages: readonly (ChatMessage | ConversationMessage)[]): ChatCompletionMessageParam[] {
  return messages.map((message): ChatCompletionMessageParam => {
    switch (message.role) {
      case 'tool':
        return { role: 'tool', content: message.content, tool_call_id: message.toolCallId };
      case 'assistant': {
        const calls = 'toolCalls' in message ? (message.toolCalls ?? []) : [];
        if (calls.length === 0) return { role: 'assistant', content: message.content ?? '' };
        return {
          role: 'assistant',
          content: message.content,
          tool_calls: calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
        };
      }
      default:
        return { role: message.role, content: message.content };
    }
  });
}

function openAITool(tool: ToolDefinition): ChatCompletionTool {
  return {
    type: 'function',
    function: { name: tool.name, ...(tool.description ? { description: tool.description } : {}), parameters: tool.parameters },
  };
}
