/**
 * How the local model (local-answerer.ts) completes a conversation that offers tools. It is NOT a language
 * model: a small deterministic rule stands in for one, so that workflows and agents run offline, in tests and
 * in the embedded default, and the same conversation always gets the same reply.
 *
 * Where "the question" is the content of the last `user` message (empty when there is none):
 *
 * 1. Tool results follow the last user message (a `tool` message after it): the reply is text and calls no
 *    tool, one line per result in order, `Based on <tool>: <the result's first 500 characters>` (`<tool>` is
 *    the name of the call the result answers, or its call id when no assistant message made that call).
 * 2. Otherwise, when tools are offered, the reply calls exactly one tool and has no text. The tool is the one
 *    whose name and description share the most words with the question (words: the platform's lexical
 *    analyzer — lower-cased, stemmed, stopwords dropped — over the text, with names split at `_`, `-`, `.` and
 *    camelCase humps); ties, none sharing any included, go to the first in the list. Its arguments are a JSON
 *    object with one property set to the question: the first of the schema's `required` properties whose type
 *    is string; else `query`, else `input`, when the schema has one of type string (or of no declared type);
 *    else its first property of type string; with none of those, the arguments are `{}`. The call's id is
 *    `call_local_` and a hash of the tool, its arguments and the question's place in the conversation.
 * 3. Otherwise (no tools, no results) the extractive answerer answers the question from the conversation's
 *    other messages, each one a numbered passage (see `conversationPassages`).
 *
 * So the local model calls a tool at most once per user message, and then answers from what the tool said.
 */
import { createHash } from 'node:crypto';
import { analyze } from '@jarvis/platform/text';
import type { ContextPassage, ConversationMessage, ToolCall, ToolDefinition } from './port.ts';

/** Characters of each tool result quoted in the final answer. */
export const RESULT_QUOTE_CHARS = 500;

export interface LocalReply {
  content: string | null;
  toolCalls: ToolCall[];
}

/** Rules 1 and 2 above; undefined for rule 3 (the caller answers from passages). */
export function localToolReply(messages: readonly ConversationMessage[], tools: readonly ToolDefinition[]): LocalReply | undefined {
  const lastUser = lastUserIndex(messages);
  const results = messages.slice(lastUser + 1).filter((message) => message.role === 'tool');
  if (results.length > 0) {
    const lines = results.map((result) => `Based on ${toolNameOf(messages, result.toolCallId)}: ${result.content.slice(0, RESULT_QUOTE_CHARS)}`);
    return { content: lines.join('\n'), toolCalls: [] };
  }
  if (tools.length === 0) return undefined;
  const question = lastUser >= 0 ? (messages[lastUser]!.content ?? '') : '';
  const tool = chooseTool(question, tools);
  const property = argumentProperty(tool.parameters);
  const args = JSON.stringify(property === undefined ? {} : { [property]: question });
  const id = `call_local_${createHash('sha256').update(`${tool.name}\u0000${args}\u0000${lastUser}`).digest('hex').slice(0, 24)}`;
  return { content: null, toolCalls: [{ id, name: tool.name, arguments: args }] };
}

/** The tool sharing the most words with the question; the first of those that share as many. */
export function chooseTool(question: string, tools: readonly ToolDefinition[]): ToolDefinition {
  const asked = new Set(analyze(question));
  let best = tools[0]!;
  let bestScore = -1;
  for (const tool of tools) {
    const words = new Set(analyze(`${splitName(tool.name)} ${tool.description ?? ''}`));
    const score = [...words].filter((word) => asked.has(word)).length;
    if (score > bestScore) {
      best = tool;
      bestScore = score;
    }
  }
  return best;
}

/** Which property of an arguments schema gets the question (rule 2); undefined when none fits. */
export function argumentProperty(parameters: Record<string, unknown>): string | undefined {
  const properties = isObject(parameters.properties) ? parameters.properties : {};
  const names = Object.keys(properties);
  const typeOf = (name: string) => (isObject(properties[name]) ? (properties[name] as Record<string, unknown>).type : undefined);
  const isString = (name: string) => {
    const type = typeOf(name);
    return type === 'string' || (Array.isArray(type) && type.includes('string'));
  };
  const required = Array.isArray(parameters.required) ? parameters.required.filter((name): name is string => typeof name === 'string') : [];
  return (
    required.find((name) => names.includes(name) && isString(name)) ??
    ['query', 'input'].find((name) => names.includes(name) && (isString(name) || typeOf(name) === undefined)) ??
    names.find(isString)
  );
}

/**
 * The question and passages the extractive answerer works from (rule 3): the last user message's content,
 * and every other message with text, in order, numbered from 1 and titled by its role (a tool result by the
 * tool's name).
 */
export function conversationPassages(messages: readonly ConversationMessage[]): { question: string; passages: ContextPassage[] } {
  const lastUser = lastUserIndex(messages);
  const question = lastUser >= 0 ? (messages[lastUser]!.content ?? '') : '';
  const passages: ContextPassage[] = [];
  messages.forEach((message, index) => {
    if (index === lastUser || !message.content) return;
    const title = message.role === 'tool' ? toolNameOf(messages, message.toolCallId) : message.role;
    passages.push({ n: passages.length + 1, title, text: message.content });
  });
  return { question, passages };
}

function lastUserIndex(messages: readonly ConversationMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === 'user') return i;
  return -1;
}

/** The name of the tool call `id` in the conversation's assistant messages; the id itself when none made it. */
function toolNameOf(messages: readonly ConversationMessage[], id: string): string {
  for (const message of messages) {
    if (message.role !== 'assistant') continue;
    const call = message.toolCalls?.find((c) => c.id === id);
    if (call) return call.name;
  }
  return id;
}

/** `search_documents`, `searchDocuments`, `search-documents` → `search documents`. */
function splitName(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_\-.]+/g, ' ');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
