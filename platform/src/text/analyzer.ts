/**
 * Text → terms, the same way for documents and queries, for lexical search and embedding features.
 * Tokens are runs of letters and digits; a run joined by hyphens, periods or apostrophes ("il-6",
 * "covid-19", "1.8", "patient's") is one token. Terms split a hyphenated token into its parts and add the
 * stemmed parts glued ("il6", "tcell"), so "IL-6", "IL6" and "IL 6" meet on some terms; keeping "il-6" whole
 * instead cost 0.03 nDCG@10 on SciFact.
 */
import { porterStem } from './porter.ts';

const TOKEN = /[\p{L}\p{N}\p{M}]+(?:[-.'’][\p{L}\p{N}\p{M}]+)*/gu;

export const ENGLISH_STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between ' +
    'both but by can could did do does doing down during each few for from further had has have having he her ' +
    'here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not ' +
    'now of off on once only or other our ours ourselves out over own same she should so some such than that the ' +
    'their theirs them themselves then there these they this those through to too under until up very was we were ' +
    'what when where which while who whom why will with would you your yours yourself yourselves'
  ).split(' '),
);

const ASCII_WORD = /^[a-z]+$/;
const stems = new Map<string, string>();

/** Porter stem of plain ASCII words (memoised: corpora repeat words); other tokens are kept as they are. */
export function stem(token: string): string {
  if (!ASCII_WORD.test(token)) return token;
  let stemmed = stems.get(token);
  if (stemmed === undefined) {
    stemmed = porterStem(token);
    if (stems.size < 500_000) stems.set(token, stemmed);
  }
  return stemmed;
}

/** Lower-cased tokens in text order; NFKC folds look-alike forms (full-width digits, ligatures) first. */
export function tokenize(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(TOKEN) ?? [];
}

const NUMBER = /^\d+(?:\.\d+)*$/;

/** "patient's" → "patient", "don't" → "dont": an apostrophe never splits a word. */
function withoutApostrophes(token: string): string {
  return token.replace(/['’]s$/, '').replace(/['’]/g, '');
}

/** "1.8" stays a number; "e.g" and "u.s" become "eg" and "us". */
function withoutInnerPeriods(part: string): string {
  return NUMBER.test(part) ? part : part.replaceAll('.', '');
}

/** A token's lexical terms: the stem of a simple word; the stemmed parts of a hyphenated one, and those glued. */
function termsOfToken(token: string): string[] {
  const parts = withoutApostrophes(token)
    .split('-')
    .map(withoutInnerPeriods)
    .filter((part) => !ENGLISH_STOPWORDS.has(part));
  const stemmed = parts.map(stem);
  return stemmed.length > 1 ? [...stemmed, stemmed.join('')] : stemmed;
}

/** Stemmed terms without stopwords, in text order: what BM25 indexes and the embedder hashes. */
export function analyze(text: string): string[] {
  return tokenize(text).flatMap(termsOfToken);
}
