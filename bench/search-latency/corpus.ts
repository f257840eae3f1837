/**
 * The search-latency bench's synthetic corpus: a seeded vocabulary (English stopwords, then made-up content
 * words) drawn Zipf-distributed into markdown documents of 10 paragraphs, 100–170 words each, spread over the
 * tenant's knowledge bases.
 */
import { ENGLISH_STOPWORDS } from '@jarvis/platform/text';
import { chunkText, DEFAULT_CHUNKING } from '../../subgraphs/knowledge/src/ingestion/chunker.ts';
import { idOf, KNOWLEDGE_BASE_IDS, KNOWLEDGE_BASES } from './tenant.ts';

export const SEED = 20261127;
export const PARAGRAPHS = 10;
export const CONTENT_WORDS = 50_000;
/** Word frequencies in English text fall off about as 1 / rank. */
export const ZIPF_EXPONENT = 1.0;
/** Content-word ranks a common term is drawn from (within a few hundred of the top). */
export const COMMON_RANKS: [number, number] = [0, 300];

/** mulberry32: small, fast and seeded, so the corpus and the queries are the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ONSETS = ['b', 'c', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'cr', 'dr', 'gr', 'pl', 'st', 'tr', 'ch', 'sh', 'th'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'io', 'ou'];
const CODAS = ['', '', 'n', 'r', 'l', 'm', 'x', 'nd', 'st', 'ct'];

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

function pseudoWord(random: () => number): string {
  const syllables = 2 + Math.floor(random() * 3);
  let word = '';
  for (let i = 0; i < syllables; i++) word += pick(random, ONSETS) + pick(random, VOWELS);
  return word + pick(random, CODAS);
}

/** Ranked by frequency: stopwords first, as in English, then made-up content words. */
export interface Vocabulary {
  words: string[];
  /** Rank of the first content word. */
  firstContentRank: number;
}

export function buildVocabulary(random: () => number): Vocabulary {
  const content = new Set<string>();
  while (content.size < CONTENT_WORDS) {
    const word = pseudoWord(random);
    if (!ENGLISH_STOPWORDS.has(word)) content.add(word);
  }
  return { words: [...ENGLISH_STOPWORDS, ...content], firstContentRank: ENGLISH_STOPWORDS.size };
}

export function contentWord(vocabulary: Vocabulary, random: () => number, [from, to]: [number, number]): string {
  return vocabulary.words[vocabulary.firstContentRank + from + Math.floor(random() * (to - from))]!;
}

/** Draws word ranks with probability ∝ 1 / rank^s, by binary search over the cumulative weights. */
function zipfSampler(size: number, random: () => number): () => number {
  const cumulative = new Float64Array(size);
  let total = 0;
  for (let rank = 0; rank < size; rank++) cumulative[rank] = total += 1 / (rank + 1) ** ZIPF_EXPONENT;
  return () => {
    const target = random() * total;
    let low = 0;
    let high = size - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cumulative[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
}

/** 100–170 words in sentences of 8–20: about 300 tokens, so the chunker (400 tokens) makes one chunk of most. */
function paragraph(words: (count: number) => string[], random: () => number): string {
  const length = 100 + Math.floor(random() * 71);
  const sentences: string[] = [];
  for (let written = 0; written < length; ) {
    const sentenceLength = Math.min(length - written, 8 + Math.floor(random() * 13));
    sentences.push(words(sentenceLength).join(' ') + '.');
    written += sentenceLength;
  }
  return sentences.join(' ');
}

export interface SyntheticDocument {
  id: string;
  knowledgeBaseId: string;
  title: string;
  text: string;
  /** What the worker's chunker will make of it, counted ahead so the corpus stops at the same document every run. */
  chunks: number;
}

/**
 * Markdown documents, generated as the jobs take them so that the corpus never sits in memory, until they
 * hold `chunkCount` chunks. Two headings give the chunks section paths, which the worker embeds with them.
 */
export function* syntheticDocuments(vocabulary: Vocabulary, chunkCount: number): Generator<SyntheticDocument> {
  const random = seededRandom(SEED + 1);
  const nextRank = zipfSampler(vocabulary.words.length, random);
  const words = (count: number) => Array.from({ length: count }, () => vocabulary.words[nextRank()]!);
  const heading = () => `## ${Array.from({ length: 2 }, () => contentWord(vocabulary, random, COMMON_RANKS)).join(' ')}`;
  for (let index = 0, chunks = 0; chunks < chunkCount; index++) {
    const paragraphs = Array.from({ length: PARAGRAPHS }, () => paragraph(words, random));
    const text = [heading(), ...paragraphs.slice(0, 5), heading(), ...paragraphs.slice(5)].join('\n\n') + '\n';
    const doc = {
      id: idOf(`document:${index}`),
      knowledgeBaseId: KNOWLEDGE_BASE_IDS[index % KNOWLEDGE_BASES]!,
      title: `Report ${index}`,
      text,
      chunks: chunkText(text, DEFAULT_CHUNKING).length,
    };
    chunks += doc.chunks;
    yield doc;
  }
}
