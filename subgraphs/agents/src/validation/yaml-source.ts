/**
 * A definition's YAML, parsed with its positions kept (the `yaml` package's document model), so a problem found
 * at a JSON Pointer into the parsed value can be placed on the line and column it came from.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { segmentsOf, type Finding, type Problem } from './problems.ts';

export interface YamlSource {
  /** The document as plain data; undefined when the YAML could not be read. */
  value: unknown;
  /** What kept the YAML from being read: syntax, duplicate keys, several documents, too many aliases. */
  problems: Problem[];
  /** A finding placed in the source. */
  place(finding: Finding): Problem;
}

/** Aliases a document may expand (the `yaml` package's guard against "billion laughs" documents). */
const MAX_ALIAS_COUNT = 100;

export function readYaml(source: string): YamlSource {
  const lines = new LineCounter();
  const document = parseDocument(source, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const place = (finding: Finding): Problem => ({
    message: finding.message,
    path: finding.pointer,
    ...at(offsetOf(document, finding)),
  });
  if (document.errors.length > 0) {
    const problems = document.errors.map((error) => ({ message: error.message, path: '', ...at(error.pos[0]) }));
    return { value: undefined, problems, place };
  }
  try {
    return { value: document.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), problems: [], place };
  } catch (error) {
    return { value: undefined, problems: [{ message: (error as Error).message, path: '', line: 1, column: 1 }], place };
  }
}

/**
 * Where a finding points: its node, found by following the pointer through maps and sequences (and aliases);
 * for a collection, or when asked, the key naming it, which starts the line a reader looks at. A pointer to
 * something absent (a missing property) stops at the nearest node that is there.
 */
function offsetOf(document: Document, finding: Finding): number {
  let node: Node | null = resolved(document, document.contents);
  let key: Node | null = null;
  for (const segment of segmentsOf(finding.pointer)) {
    const next = child(node, segment);
    if (!next) break;
    key = next.key;
    node = resolved(document, next.value);
    if (!node) break;
  }
  const onKey = key && (finding.at === 'key' || !node || isMap(node) || isSeq(node));
  return (onKey ? key : node)?.range?.[0] ?? 0;
}

function child(node: Node | null, segment: string): { key: Node | null; value: Node | null } | undefined {
  if (isMap(node)) {
    const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === segment);
    return pair && { key: pair.key as Node, value: (pair.value as Node | null) ?? null };
  }
  if (isSeq(node) && /^\d+$/.test(segment)) {
    const item = node.items[Number(segment)] as Node | undefined;
    return item ? { key: null, value: item } : undefined;
  }
  return undefined;
}

function resolved(document: Document, node: unknown): Node | null {
  if (isAlias(node)) return (node.resolve(document) as Node | undefined) ?? null;
  return (node as Node | null) ?? null;
}
