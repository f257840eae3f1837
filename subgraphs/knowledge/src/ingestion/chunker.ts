/**
 * Structure-aware chunking: a document is read as blocks (headings, paragraphs, lists, code), and blocks are
 * packed into chunks within a token budget, breaking at headings first, then between blocks, then between
 * sentences (or lines, for code), with an overlap carried over from the chunk before. Every chunk is a slice
 * of the original text, so its offsets cite exactly what was indexed.
 */

export type BlockKind = 'heading' | 'paragraph' | 'list' | 'code';

export interface Block {
  kind: BlockKind;
  start: number;
  end: number;
  /** The headings this block sits under, outermost first (a heading's own path includes itself). */
  sectionPath: string[];
}

export interface Chunk {
  index: number;
  text: string;
  start: number;
  end: number;
  sectionPath: string[];
  tokens: number;
}

export interface ChunkOptions {
  /** Most tokens in a chunk (overlap included). */
  maxTokens: number;
  /** Tokens of the previous chunk's end repeated at the start of the next, for context across the cut. */
  overlapTokens: number;
}

export const DEFAULT_CHUNKING: ChunkOptions = { maxTokens: 400, overlapTokens: 60 };

/** Model tokens, estimated: about four characters each for English prose, a fair budget guide without a tokenizer. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.trim().length / 4);
}

const HEADING = /^(#{1,6})[ \t]+(.+?)[ \t#]*$/;
const FENCE = /^(```|~~~)/;
const LIST_ITEM = /^[ \t]*(?:[-*+]|\d+[.)])[ \t]+/;

interface Line {
  text: string;
  start: number;
  end: number;
}

function linesOf(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  for (const text_ of text.split('\n')) {
    lines.push({ text: text_, start, end: start + text_.length });
    start += text_.length + 1;
  }
  return lines;
}

/** Markdown (plain text reads as paragraphs): headings, fenced code, lists and paragraphs, with their offsets. */
export function blocksOf(text: string): Block[] {
  const blocks: Block[] = [];
  const path: { level: number; title: string }[] = [];
  const lines = linesOf(text);
  let i = 0;
  const push = (kind: BlockKind, from: Line, to: Line) => {
    blocks.push({ kind, start: from.start, end: to.end, sectionPath: path.map((h) => h.title) });
  };
  while (i < lines.length) {
    const line = lines[i]!;
    if (!line.text.trim()) {
      i++;
      continue;
    }
    const heading = HEADING.exec(line.text);
    if (heading) {
      const level = heading[1]!.length;
      while (path.length && path.at(-1)!.level >= level) path.pop();
      path.push({ level, title: heading[2]!.trim() });
      push('heading', line, line);
      i++;
      continue;
    }
    const fence = FENCE.exec(line.text.trimStart());
    if (fence) {
      let j = i + 1;
      while (j < lines.length && !lines[j]!.text.trimStart().startsWith(fence[1]!)) j++;
      push('code', line, lines[Math.min(j, lines.length - 1)]!);
      i = j + 1;
      continue;
    }
    const kind: BlockKind = LIST_ITEM.test(line.text) ? 'list' : 'paragraph';
    let j = i;
    while (j + 1 < lines.length && continues(lines[j + 1]!.text, kind)) j++;
    push(kind, line, lines[j]!);
    i = j + 1;
  }
  return blocks;
}

/** A line carries on the block above it: not blank, not a heading or fence, and for lists an item or indented. */
function continues(text: string, kind: BlockKind): boolean {
  if (!text.trim() || HEADING.test(text) || FENCE.test(text.trimStart())) return false;
  if (kind === 'list') return LIST_ITEM.test(text) || /^[ \t]+\S/.test(text);
  return !LIST_ITEM.test(text);
}

/** Where a block may be cut when it alone exceeds the budget: after sentences in prose, after lines in code. */
function cutPoints(text: string, block: Block): number[] {
  const body = text.slice(block.start, block.end);
  const pattern = block.kind === 'code' || block.kind === 'list' ? /\n/g : /[.!?]["')\]]?\s+/g;
  const points: number[] = [];
  for (const match of body.matchAll(pattern)) points.push(block.start + match.index + match[0].length);
  return points;
}

/** Splits blocks that exceed the budget at their cut points (or, failing those, at a word boundary). */
function pieces(text: string, block: Block, maxTokens: number): Block[] {
  if (estimateTokens(text.slice(block.start, block.end)) <= maxTokens) return [block];
  const result: Block[] = [];
  let start = block.start;
  let last = start;
  for (const point of [...cutPoints(text, block), block.end]) {
    if (estimateTokens(text.slice(start, point)) > maxTokens && last > start) {
      result.push({ ...block, start, end: last });
      start = last;
    }
    last = point;
  }
  result.push({ ...block, start, end: block.end });
  return result.flatMap((piece) => (estimateTokens(text.slice(piece.start, piece.end)) > maxTokens ? byWords(text, piece, maxTokens) : [piece]));
}

function byWords(text: string, block: Block, maxTokens: number): Block[] {
  const result: Block[] = [];
  const width = maxTokens * 4;
  let start = block.start;
  while (start < block.end) {
    let end = Math.min(block.end, start + width);
    if (end < block.end) {
      const space = text.lastIndexOf(' ', end);
      if (space > start) end = space + 1;
    }
    result.push({ ...block, start, end });
    start = end;
  }
  return result;
}

/** Where the overlap starts: the latest sentence or line start in the chunk that leaves at most `tokens`. */
function overlapStart(text: string, start: number, end: number, tokens: number): number {
  if (tokens <= 0) return end;
  const candidates = [start];
  for (const match of text.slice(start, end).matchAll(/[.!?]\s+|\n/g)) candidates.push(start + match.index + match[0].length);
  const fitting = candidates.filter((point) => point < end && estimateTokens(text.slice(point, end)) <= tokens);
  return fitting.length ? Math.min(...fitting) : end;
}

export function chunkText(text: string, options: ChunkOptions = DEFAULT_CHUNKING): Chunk[] {
  const { maxTokens, overlapTokens } = options;
  const body = Math.max(1, maxTokens - overlapTokens);
  const units = blocksOf(text).flatMap((block) => pieces(text, block, body));
  const chunks: Chunk[] = [];
  let current: Block[] = [];

  const flush = () => {
    if (!current.length) return;
    const first = current[0]!;
    const start = overlapFrom(chunks.at(-1), first) ?? first.start;
    const end = current.at(-1)!.end;
    const slice = text.slice(start, end);
    chunks.push({ index: chunks.length, text: slice, start, end, sectionPath: firstContent(current).sectionPath, tokens: estimateTokens(slice) });
    current = [];
  };

  /** Overlap carries context within a section; a new section starts clean, at its heading. */
  function overlapFrom(previous: Chunk | undefined, first: Block): number | undefined {
    if (!previous || first.kind === 'heading' || !samePath(previous.sectionPath, first.sectionPath)) return undefined;
    const carried = overlapStart(text, previous.start, previous.end, overlapTokens);
    return carried < previous.end ? carried : undefined;
  }

  for (const unit of units) {
    const startsSection = unit.kind === 'heading' && current.some((block) => block.kind !== 'heading');
    const wouldBe = current.length ? estimateTokens(text.slice(current[0]!.start, unit.end)) : 0;
    if (startsSection || wouldBe > body) flush();
    current.push(unit);
  }
  flush();
  return chunks;
}

/** The section a chunk belongs to is that of its first block of content (a heading leads into its section). */
function firstContent(blocks: Block[]): Block {
  return blocks.find((block) => block.kind !== 'heading') ?? blocks[0]!;
}

const samePath = (a: string[], b: string[]) => a.length === b.length && a.every((title, i) => title === b[i]);
