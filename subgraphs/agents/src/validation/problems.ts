/** What is wrong with a definition and where: a JSON Pointer into the document, and its line and column in the YAML. */
export interface Problem {
  message: string;
  /** A JSON Pointer (RFC 6901) into the document, `/do/0/search/with`; empty for the document as a whole. */
  path: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

/** A problem found in the parsed document, before it is placed in the YAML. */
export interface Finding {
  pointer: string;
  message: string;
  /** Place it on the key that names the node (an unknown property) rather than on the node's value. */
  at?: 'key';
}

export const pointerOf = (segments: readonly PropertyKey[]): string =>
  segments.map((segment) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

export const segmentsOf = (pointer: string): string[] =>
  pointer === '' ? [] : pointer.slice(1).split('/').map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));

/** `pointer` and every pointer above it, up to the whole document's (''). */
export function selfAndAncestors(pointer: string): string[] {
  const found = [pointer];
  for (let end = pointer.lastIndexOf('/'); end > 0; end = pointer.lastIndexOf('/', end - 1)) found.push(pointer.slice(0, end));
  if (pointer !== '') found.push('');
  return found;
}

export const finding = (segments: readonly PropertyKey[], message: string, at?: 'key'): Finding =>
  at ? { pointer: pointerOf(segments), message, at } : { pointer: pointerOf(segments), message };

/** Problems in the order they appear in the source, each place and message once. */
export function inSourceOrder(problems: Problem[]): Problem[] {
  const unique = new Map<string, Problem>();
  for (const problem of problems) {
    const key = `${problem.path}\u0000${problem.message}`;
    if (!unique.has(key)) unique.set(key, problem);
  }
  return [...unique.values()].sort((a, b) => a.line - b.line || a.column - b.column);
}
