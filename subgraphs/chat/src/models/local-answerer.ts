/**
 * The offline, deterministic default model: an extractive answerer. It answers from the request's passages
 * alone by choosing the sentences that best cover the question and quoting them, each followed by the
 * citation marker of its passage (` [n]`). When no sentence covers enough of the question it says so
 * (`NOT_FOUND_ANSWER`) rather than quote something beside the point.
 *
 * Scoring: the question and each sentence become stemmed terms without stopwords (platform's `analyze`, the
 * one lexical search uses). A sentence's score is the share of the question's IDF weight it covers (IDF over
 * all the passages' sentences, so a word every sentence has weighs little), raised a little for sentences
 * dense in question terms and lowered a little the further down the passage ranking it comes from.
 * The answer quotes the best sentence and up to `maxSentences - 1` more that score at least half as well,
 * in reading order (passage rank, then position in the passage).
 *
 * It streams real text, one word with its trailing space per token, and reports usage: prompt tokens are
 * the request's `promptTokens` (the messages' estimate, tokens.ts), completion tokens the number of token
 * chunks streamed.
 *
 * `complete` (a conversation, perhaps offering tools) follows the deterministic rule of local-tools.ts: a tool
 * call chosen by shared words, then text quoting the tool results, and without tools the same extractive
 * answer, to the last user message from the conversation's other messages. Its usage is counted with the
 * tokenizer: the request's `promptTokens`, and the reply's text and tool calls (tokens.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { definedOnly } from '@jarvis/platform/options';
import { analyze } from '@jarvis/platform/text';
import { conversationPassages, localToolReply } from './local-tools.ts';
import { abortReason, type ChatModel, type Completion, type CompletionChunk, type CompletionRequest, type ContextPassage, type ToolCompletionRequest } from './port.ts';
import { countToolCallTokens, countTokens } from './tokens.ts';

export const NOT_FOUND_ANSWER = 'I could not find this in the knowledge base.';

export interface LocalAnswererOptions {
  /** Defaults to `local-extractive`. */
  name?: string;
  /** Wait before each token, so streaming can be watched; default 0. */
  tokenDelayMs?: number;
  /** At most this many sentences in an answer; default 3. */
  maxSentences?: number;
  /** The least share of the question's weight a sentence must cover to be an answer; default 0.25. */
  minCoverage?: number;
}

const LOCAL_ANSWERER_DEFAULTS = { name: 'local-extractive', tokenDelayMs: 0, maxSentences: 3, minCoverage: 0.25 } as const;

export interface AnswerSentence {
  /** The sentence as the passage has it (list markers dropped, a full stop added where it had none). */
  text: string;
  /** The passage's number, cited as [n]. */
  n: number;
  score: number;
}

export class LocalAnswerer implements ChatModel {
  readonly name: string;
  private readonly settings: Required<Omit<LocalAnswererOptions, 'name'>>;

  constructor(options: LocalAnswererOptions = {}) {
    const { name, ...settings } = { ...LOCAL_ANSWERER_DEFAULTS, ...definedOnly(options) };
    this.name = name;
    this.settings = settings;
  }

  async *stream(request: CompletionRequest): AsyncGenerator<CompletionChunk> {
    const { signal } = request;
    if (signal.aborted) throw abortReason(signal);
    const { promptTokens } = request;
    const words = answerTokens(answerSentences(request.question, request.passages, this.settings));
    let completionTokens = 0;
    for (const text of words.slice(0, Math.max(0, request.maxTokens))) {
      if (this.settings.tokenDelayMs > 0) {
        await sleep(this.settings.tokenDelayMs, undefined, { signal }).catch(() => undefined);
      }
      if (signal.aborted) throw abortReason(signal);
      completionTokens++;
      yield { kind: 'token', text };
    }
    yield { kind: 'usage', promptTokens, completionTokens };
  }

  async complete(request: ToolCompletionRequest): Promise<Completion> {
    if (request.signal.aborted) throw abortReason(request.signal);
    const reply = localToolReply(request.messages, request.tools) ?? this.extractive(request);
    const content = reply.content === null ? null : capWords(reply.content, request.maxTokens);
    const completionTokens = countTokens(content ?? '') + countToolCallTokens(reply.toolCalls);
    return { content, toolCalls: reply.toolCalls, promptTokens: request.promptTokens, completionTokens };
  }

  /** The answer `stream` would give to the last user message, from the conversation's other messages. */
  private extractive(request: ToolCompletionRequest) {
    const { question, passages } = conversationPassages(request.messages);
    return { content: answerText(answerSentences(question, passages, this.settings)), toolCalls: [] };
  }
}

/** At most `max` words, as `stream` stops after `maxTokens` word tokens. */
function capWords(text: string, max: number): string {
  const words = text.match(/\S+\s*/g) ?? [];
  return words.length <= max ? text : words.slice(0, Math.max(0, max)).join('').trimEnd();
}

/** The answer's text as the answerer streams it: each sentence followed by ` [n]`, or `NOT_FOUND_ANSWER`. */
export function answerText(sentences: readonly AnswerSentence[]): string {
  if (sentences.length === 0) return NOT_FOUND_ANSWER;
  return sentences.map((sentence) => `${sentence.text} [${sentence.n}]`).join(' ');
}

/** One word with its trailing space per token; joined they give `answerText` back. */
function answerTokens(sentences: readonly AnswerSentence[]): string[] {
  return answerText(sentences).match(/\S+\s*/g) ?? [];
}

interface Candidate {
  text: string;
  n: number;
  rank: number;
  position: number;
  terms: Set<string>;
}

/** The sentences that answer `question` from `passages` (best first), in reading order; empty when none does. */
export function answerSentences(
  question: string,
  passages: readonly ContextPassage[],
  options: Pick<LocalAnswererOptions, 'maxSentences' | 'minCoverage'> = {},
): AnswerSentence[] {
  const { maxSentences, minCoverage } = { ...LOCAL_ANSWERER_DEFAULTS, ...definedOnly(options) };
  const questionTerms = new Set(analyze(question));
  if (questionTerms.size === 0 || maxSentences < 1) return [];

  const candidates: Candidate[] = passages.flatMap((passage, rank) =>
    splitSentences(passage.text).map((text, position) => ({ text, n: passage.n, rank, position, terms: new Set(analyze(text)) })),
  );
  const documentFrequency = new Map<string, number>();
  for (const candidate of candidates) {
    for (const term of candidate.terms) documentFrequency.set(term, (documentFrequency.get(term) ?? 0) + 1);
  }
  const idf = (term: string) => Math.log(1 + (candidates.length + 1) / ((documentFrequency.get(term) ?? 0) + 0.5));
  const questionWeight = [...questionTerms].reduce((sum, term) => sum + idf(term), 0);

  const scored = candidates.flatMap((candidate) => {
    const matched = [...questionTerms].filter((term) => candidate.terms.has(term));
    if (matched.length === 0) return [];
    const coverage = matched.reduce((sum, term) => sum + idf(term), 0) / questionWeight;
    if (coverage < minCoverage) return [];
    const density = Math.min(1, matched.length / Math.sqrt(candidate.terms.size));
    const score = (coverage * (1 + 0.15 * density)) / (1 + 0.05 * candidate.rank);
    return [{ candidate, score }];
  });
  if (scored.length === 0) return [];

  // Best first; ties go to the better passage, then the earlier sentence, so the choice is deterministic.
  scored.sort((a, b) => b.score - a.score || a.candidate.rank - b.candidate.rank || a.candidate.position - b.candidate.position);
  const best = scored[0]!.score;
  const chosen: typeof scored = [];
  const seen = new Set<string>();
  for (const entry of scored) {
    if (chosen.length >= maxSentences || entry.score < best / 2) break;
    const key = entry.candidate.text.toLowerCase().replace(/\W+/g, ' ').trim();
    if (seen.has(key)) continue;
    seen.add(key);
    chosen.push(entry);
  }
  chosen.sort((a, b) => a.candidate.rank - b.candidate.rank || a.candidate.position - b.candidate.position);
  return chosen.map(({ candidate, score }) => ({ text: candidate.text, n: candidate.n, score }));
}

/** Words whose full stop does not end a sentence. */
const ABBREVIATIONS = new Set(['e.g', 'i.e', 'etc', 'vs', 'mr', 'mrs', 'ms', 'dr', 'prof', 'inc', 'ltd', 'co', 'fig', 'approx', 'cf', 'st']);

/**
 * Sentences of a passage: lines first (a heading or a list item is a unit of its own), then sentence ends
 * (`.`, `!`, `?` before white space and an upper-case letter, digit or opening quote), except after an
 * abbreviation or an initial. Markdown list and heading markers are dropped, and a sentence without final
 * punctuation gets a full stop. Fragments of fewer than three words (headings, labels) are left out.
 */
export function splitSentences(text: string): string[] {
  const sentences: string[] = [];
  for (const rawLine of text.split(/\n+/)) {
    const line = rawLine.replace(/^\s*(?:#{1,6}\s+|[-*•+]\s+|\d+[.)]\s+|>\s*)/, '').replace(/\s+/g, ' ').trim();
    if (!line) continue;
    let start = 0;
    for (const match of line.matchAll(/[.!?]+["'”’)\]]*\s+(?=["'“‘(\[]?[\p{Lu}\p{N}])/gu)) {
      const end = match.index + match[0].length;
      const lastWord = line.slice(start, match.index + 1).split(' ').pop()!.replace(/\.$/, '').toLowerCase();
      if (ABBREVIATIONS.has(lastWord) || /^\p{L}$/u.test(lastWord)) continue;
      sentences.push(line.slice(start, end).trim());
      start = end;
    }
    sentences.push(line.slice(start).trim());
  }
  return sentences
    .filter((sentence) => sentence.split(' ').length >= 3)
    .map((sentence) => (/[.!?]["'”’)\]]*$/u.test(sentence) ? sentence : `${sentence.replace(/[,;:]$/, '')}.`));
}
