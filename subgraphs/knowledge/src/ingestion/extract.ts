/**
 * Text extraction: an uploaded document's bytes become the text the chunker reads. Plain text and markdown are
 * decoded as they are; HTML becomes markdown and PDF pages become markdown-ish text (headings from larger type,
 * paragraphs from wider line gaps), so the chunker finds the document's sections. A document that can never be
 * read throws DocumentRejectedError; anything else that fails is an internal error, worth trying again.
 */
import TurndownService from 'turndown';
import { extractTextItems, getDocumentProxy, type StructuredTextItem } from 'unpdf';

export const MEDIA_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/pdf'] as const;
export type MediaType = (typeof MEDIA_TYPES)[number];

const ALIASES = new Map<string, MediaType>([
  ['text/x-markdown', 'text/markdown'],
  ['application/xhtml+xml', 'text/html'],
  ['application/x-pdf', 'application/pdf'],
]);

const EXTENSIONS = new Map<string, MediaType>([
  ['txt', 'text/plain'],
  ['text', 'text/plain'],
  ['md', 'text/markdown'],
  ['markdown', 'text/markdown'],
  ['html', 'text/html'],
  ['htm', 'text/html'],
  ['xhtml', 'text/html'],
  ['pdf', 'application/pdf'],
]);

/** The supported media type a declared one names (parameters such as `charset` ignored), if any. */
export function supportedMediaType(declared: string): MediaType | undefined {
  const essence = declared.split(';')[0]!.trim().toLowerCase();
  return (MEDIA_TYPES as readonly string[]).includes(essence) ? (essence as MediaType) : ALIASES.get(essence);
}

/**
 * The media type to read an upload as: the declared one when it is supported, otherwise the file's extension
 * (clients often declare application/octet-stream). Undefined when neither names a supported type.
 */
export function mediaTypeOf(filename: string, declared?: string): MediaType | undefined {
  const fromDeclared = declared ? supportedMediaType(declared) : undefined;
  const extension = /\.([^./\\]+)$/.exec(filename)?.[1]?.toLowerCase();
  return fromDeclared ?? (extension ? EXTENSIONS.get(extension) : undefined);
}

export type RejectionCode =
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'DOCUMENT_TOO_LARGE'
  | 'EMPTY_DOCUMENT'
  | 'INVALID_ENCODING'
  | 'UNREADABLE_PDF'
  | 'ENCRYPTED_PDF'
  | 'NO_TEXT_LAYER';

/** The document itself can never be read: its message is the reason shown to the user, and retrying is pointless. */
export class DocumentRejectedError extends Error {
  override readonly name = 'DocumentRejectedError';
  readonly code: RejectionCode;

  constructor(code: RejectionCode, message: string) {
    super(message);
    this.code = code;
  }
}

export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
/** As many characters as the largest plain-text upload holds; a small PDF can inflate to far more. */
export const DEFAULT_MAX_TEXT_LENGTH = DEFAULT_MAX_BYTES;

export interface ExtractOptions {
  /** Largest upload read, in bytes. */
  maxBytes?: number;
  /** Longest extracted text kept, in characters. */
  maxTextLength?: number;
}

export async function extractText(mediaType: string, content: Uint8Array, options: ExtractOptions = {}): Promise<string> {
  const type = supportedMediaType(mediaType);
  if (!type) {
    throw new DocumentRejectedError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Documents of type ${JSON.stringify(mediaType.slice(0, 100))} cannot be read; supported types are ${MEDIA_TYPES.join(', ')}.`,
    );
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (content.byteLength > maxBytes) {
    throw new DocumentRejectedError('DOCUMENT_TOO_LARGE', `The document is ${content.byteLength} bytes; at most ${maxBytes} bytes can be read.`);
  }
  const text = content.byteLength ? await EXTRACTORS[type](content) : '';
  if (!text.trim()) throw new DocumentRejectedError('EMPTY_DOCUMENT', 'The document contains no text.');
  const maxTextLength = options.maxTextLength ?? DEFAULT_MAX_TEXT_LENGTH;
  if (text.length > maxTextLength) {
    throw new DocumentRejectedError('DOCUMENT_TOO_LARGE', `The document's text is ${text.length} characters; at most ${maxTextLength} can be indexed.`);
  }
  return text;
}

const EXTRACTORS: Record<MediaType, (content: Uint8Array) => Promise<string>> = {
  'text/plain': async (content) => decodeText(content),
  'text/markdown': async (content) => decodeText(content),
  'text/html': async (content) => htmlToMarkdown(decodeText(content)),
  'application/pdf': pdfToText,
};

/** Strict UTF-8 (UTF-16 when a byte-order mark says so, as Windows tools write it); the BOM itself is dropped. */
function decodeText(content: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder(encodingOf(content), { fatal: true }).decode(content);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') throw error;
    throw new DocumentRejectedError('INVALID_ENCODING', 'The document is not valid UTF-8 text (is it a binary file?); save it as UTF-8 and upload it again.');
  }
  if (text.includes('\0')) {
    throw new DocumentRejectedError('INVALID_ENCODING', 'The document contains NUL characters, so it is a binary file rather than text.');
  }
  return text.replace(/\r\n?/g, '\n');
}

function encodingOf(content: Uint8Array): string {
  if (content[0] === 0xff && content[1] === 0xfe) return 'utf-16le';
  if (content[0] === 0xfe && content[1] === 0xff) return 'utf-16be';
  return 'utf-8';
}

const TURNDOWN_OPTIONS: TurndownService.Options = { headingStyle: 'atx', codeBlockStyle: 'fenced', bulletListMarker: '-' };

const NOISE_ELEMENTS = [
  'script', 'style', 'noscript', 'template', 'iframe', 'object', 'embed', 'svg', 'canvas',
  'nav', 'footer', 'button', 'select', 'textarea', 'input',
] as const;

/** Page chrome and what a reader never sees. */
function isNoise(node: HTMLElement): boolean {
  if ((NOISE_ELEMENTS as readonly string[]).includes(node.nodeName.toLowerCase())) return true;
  const role = node.getAttribute('role');
  return role === 'navigation' || role === 'contentinfo' || node.hasAttribute('hidden') || node.getAttribute('aria-hidden') === 'true';
}

/**
 * Markdown with atx headings, fenced code and `-` bullets. The `<title>` leads as the `#` heading only when the
 * page has no h1 of its own (it usually repeats the h1, often with the site's name added).
 */
function htmlToMarkdown(html: string): string {
  const found = { title: '', h1: false };
  const service = new TurndownService(TURNDOWN_OPTIONS);
  service.escape = escapeStructure;
  service.remove(isNoise);
  service.addRule('title', {
    filter: 'title',
    replacement: (content) => {
      found.title ||= oneLine(content);
      return '';
    },
  });
  service.addRule('heading', {
    filter: ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'],
    replacement: (content, node) => {
      const level = Number(node.nodeName.charAt(1));
      const title = oneLine(content);
      if (!title) return '';
      if (level === 1) found.h1 = true;
      return `\n\n${'#'.repeat(level)} ${title}\n\n`;
    },
  });
  // Link targets and image sources are noise to search and to the model; the words a reader sees are kept.
  service.addRule('link', { filter: 'a', replacement: (content) => content });
  service.addRule('image', { filter: 'img', replacement: (_content, node) => oneLine((node as HTMLElement).getAttribute('alt') ?? '') });
  // A table row stays on one line, so a cell is read next to its neighbours rather than as a paragraph of its own.
  service.addRule('tableCell', { filter: ['th', 'td'], replacement: (content) => ` ${oneLine(content)} |` });
  service.addRule('tableRow', { filter: 'tr', replacement: (content) => `\n|${content}\n` });
  // Turndown trims newlines but not the spaces left where the page's head and chrome were.
  const markdown = service.turndown(html).trim();
  return found.title && !found.h1 ? `# ${found.title}\n\n${markdown}` : markdown;
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/**
 * Turndown escapes every markdown character (snake\_case, \[1\]), which would then be indexed and quoted. Only
 * what the chunker would misread as structure is escaped: a heading, list or fence marker opening a line.
 */
function escapeStructure(text: string): string {
  return text.replace(/^([ \t]*)(#{1,6}(?=[ \t])|[-*+](?=[ \t])|\d+(?=[.)][ \t])|```|~~~)/gm, (_match, indent: string, marker: string) =>
    /^\d/.test(marker) ? `${indent}${marker}\\` : `${indent}\\${marker}`,
  );
}

interface PdfLine {
  text: string;
  /** Baseline, in PDF space: larger is higher on the page. */
  y: number;
  /** The font size most of the line's characters are set in. */
  size: number;
}

/** Type this much larger than the body text, on a short line, reads as a heading. */
const HEADING_SCALE = 1.15;
const MAX_HEADING_LENGTH = 120;
/** A gap this much wider than the page's usual line step starts a new paragraph. */
const PARAGRAPH_GAP = 1.3;
const BULLET = /^[•●▪◦‣∙]\s*/;
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

async function pdfToText(content: Uint8Array): Promise<string> {
  const pages = (await readPdfItems(content)).map(linesOf);
  const headingLevel = headingLevels(pages.flat());
  const text = pages
    .map((lines) => pageText(lines, headingLevel))
    .filter((page) => page.trim())
    .join('\n\n');
  if (!text.trim()) {
    throw new DocumentRejectedError(
      'NO_TEXT_LAYER',
      'The PDF has no text layer (it is probably scanned images); text recognition (OCR) is not supported, so upload a PDF with selectable text.',
    );
  }
  return text;
}

async function readPdfItems(content: Uint8Array): Promise<StructuredTextItem[][]> {
  try {
    // pdf.js detaches the buffer it is given, and a Buffer may share its memory with others: it gets a copy.
    const pdf = await getDocumentProxy(new Uint8Array(content), { verbosity: 0 });
    try {
      return (await extractTextItems(pdf)).items;
    } finally {
      await pdf.loadingTask.destroy();
    }
  } catch (error) {
    throw pdfRejection(error) ?? error;
  }
}

/** pdf.js's own verdicts on the file; any other failure is ours, not the document's. */
function pdfRejection(error: unknown): DocumentRejectedError | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'PasswordException') {
    return new DocumentRejectedError('ENCRYPTED_PDF', 'The PDF is password-protected; remove the password and upload it again.');
  }
  if (name === 'InvalidPDFException' || name === 'FormatError') {
    return new DocumentRejectedError('UNREADABLE_PDF', 'The file is not a readable PDF: it is damaged or incomplete.');
  }
  return undefined;
}

/** pdf.js marks where its text items end a line; a line is the visible items up to there. */
function linesOf(items: StructuredTextItem[]): PdfLine[] {
  const lines: PdfLine[] = [];
  let current: StructuredTextItem[] = [];
  for (const item of items) {
    current.push(item);
    if (item.hasEOL) {
      lines.push(...lineOf(current));
      current = [];
    }
  }
  lines.push(...lineOf(current));
  return lines;
}

function lineOf(items: StructuredTextItem[]): PdfLine[] {
  const visible = items.filter((item) => item.str.trim());
  if (!visible.length) return [];
  const text = items.map((item) => item.str).join('').replace(CONTROL_CHARACTERS, '');
  return [{ text: oneLine(text), y: visible[0]!.y, size: mostCommon(visible.map((item) => [roundSize(item.fontSize), item.str.length])) }];
}

const roundSize = (size: number) => Math.round(size * 2) / 2;

function mostCommon(weighted: [value: number, weight: number][]): number {
  const totals = new Map<number, number>();
  for (const [value, weight] of weighted) totals.set(value, (totals.get(value) ?? 0) + weight);
  return [...totals].reduce((best, entry) => (entry[1] > best[1] ? entry : best))[0];
}

/** Heading levels by type size across the whole document: the largest heading type is level 1. */
function headingLevels(lines: PdfLine[]): (line: PdfLine) => number | undefined {
  if (!lines.length) return () => undefined;
  const bodySize = mostCommon(lines.map((line) => [line.size, line.text.length]));
  const isHeading = (line: PdfLine) =>
    line.size >= bodySize * HEADING_SCALE && line.text.length <= MAX_HEADING_LENGTH && /\p{L}/u.test(line.text);
  const sizes = [...new Set(lines.filter(isHeading).map((line) => line.size))].sort((a, b) => b - a);
  return (line) => (isHeading(line) ? Math.min(6, sizes.indexOf(line.size) + 1) : undefined);
}

/** One page as blocks separated by blank lines: `#` headings, and paragraphs whose lines are kept. */
function pageText(lines: PdfLine[], headingLevel: (line: PdfLine) => number | undefined): string {
  const blocks: string[] = [];
  const step = usualLineStep(lines, (line) => !headingLevel(line));
  let previous: { line: PdfLine; level: number | undefined } | undefined;
  for (const line of lines) {
    const level = headingLevel(line);
    const text = line.text.replace(BULLET, '- ');
    if (level && previous?.level === level && wrapsOnto(previous.line, line)) blocks.push(`${blocks.pop()!} ${text}`);
    else if (level) blocks.push(`${'#'.repeat(level)} ${text}`);
    else if (!previous || previous.level || startsParagraph(previous.line, line, step)) blocks.push(text);
    else blocks.push(joinLines(blocks.pop()!, text));
    previous = { line, level };
  }
  return blocks.join('\n\n');
}

/**
 * The (lower) median distance between consecutive baselines of body text going down the page; headings sit
 * apart, so they are left out.
 */
function usualLineStep(lines: PdfLine[], isBody: (line: PdfLine) => boolean): number {
  const steps = lines
    .slice(1)
    .map((line, i) => ({ above: lines[i]!, line }))
    .filter(({ above, line }) => isBody(above) && isBody(line) && above.y > line.y)
    .map(({ above, line }) => above.y - line.y)
    .sort((a, b) => a - b);
  return steps.length ? steps[Math.floor((steps.length - 1) / 2)]! : Infinity;
}

/** A wider gap than usual, or a jump back up the page (the next column), ends the paragraph. */
function startsParagraph(above: PdfLine, line: PdfLine, step: number): boolean {
  const gap = above.y - line.y;
  return gap < 0 || gap > step * PARAGRAPH_GAP;
}

/** A heading too long for one line goes on right below, at the same size. */
function wrapsOnto(above: PdfLine, line: PdfLine): boolean {
  const gap = above.y - line.y;
  return gap > 0 && gap <= line.size * 1.5;
}

/** A word hyphenated across the line break is made whole again; other lines keep their break. */
function joinLines(paragraph: string, line: string): string {
  return /\p{L}[-\u00ad]$/u.test(paragraph) && /^\p{Ll}/u.test(line) ? paragraph.slice(0, -1) + line : `${paragraph}\n${line}`;
}
