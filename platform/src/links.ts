import { Kind, type ConstDirectiveNode, type ConstValueNode, type DocumentNode } from 'graphql';

/** Reading `@link` (the link spec) in SDL: which specs a schema links and under what names it imports them. */

/** The `@link`s on a schema whose url matches `url`, with the match. */
export function linksTo(document: DocumentNode, url: RegExp): { match: RegExpExecArray; link: ConstDirectiveNode }[] {
  const found = [];
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const link of definition.directives ?? []) {
      const match = link.name.value === 'link' ? url.exec(stringValue(argument(link, 'url')) ?? '') : null;
      if (match) found.push({ match, link });
    }
  }
  return found;
}

/** The name a link imports directive `@name` under (itself, or what `as` renames it to); undefined if not imported. */
export function importedName(link: ConstDirectiveNode, name: string): string | undefined {
  const imports = argument(link, 'import');
  if (imports?.kind !== Kind.LIST) return undefined;
  for (const entry of imports.values) {
    if (stringValue(entry) === `@${name}`) return name;
    if (entry.kind !== Kind.OBJECT) continue;
    const field = (key: string) => stringValue(entry.fields.find((f) => f.name.value === key)?.value);
    if (field('name') === `@${name}`) return (field('as') ?? `@${name}`).slice(1);
  }
  return undefined;
}

export function argument(directive: ConstDirectiveNode, name: string): ConstValueNode | undefined {
  return directive.arguments?.find((arg) => arg.name.value === name)?.value;
}

export function stringValue(value: ConstValueNode | undefined): string | undefined {
  return value?.kind === Kind.STRING ? value.value : undefined;
}
