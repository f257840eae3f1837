/** The authorization rules of a supergraph: what its @authenticated, @requiresScopes and @policy demand. */
import {
  isTypeDefinitionNode,
  isTypeExtensionNode,
  Kind,
  parse,
  type ConstDirectiveNode,
  type ConstValueNode,
  type DocumentNode,
} from 'graphql';
import { argument, importedName, linksTo, stringValue } from '@jarvis/platform/schema';

/** `[["a", "b"], ["c"]]`: any one of the inner lists, all of its entries — (a AND b) OR c. */
export type AnyOfAll = readonly (readonly string[])[];

/** What a field or a type demands of the caller; every part must hold. */
export interface Requirement {
  authenticated: boolean;
  scopes: readonly AnyOfAll[];
  policies: readonly AnyOfAll[];
}

export interface AuthorizationRules {
  /** Requirements written on object, interface, scalar and enum types, by type name. */
  types: ReadonlyMap<string, Requirement>;
  /** Requirements written on fields themselves, by coordinate `Type.field`. */
  fields: ReadonlyMap<string, Requirement>;
}

type Feature = 'authenticated' | 'requiresScopes' | 'policy';
const FEATURE_URL = /^https:\/\/specs\.apollo\.dev\/(authenticated|requiresScopes|policy)\/v0\.\d+$/;

interface FeatureLink {
  feature: Feature;
  directive: ConstDirectiveNode;
}

/**
 * The authorization rules of a supergraph, and the copy of it @apollo/gateway accepts: the gateway refuses
 * features linked `for: SECURITY` that it cannot enforce, so that argument is cut from their @link.
 */
export function readAuthorization(supergraphSdl: string, document = parse(supergraphSdl)): { rules: AuthorizationRules; gatewaySdl: string } {
  const links = linksTo(document, FEATURE_URL).map(({ match, link }) => ({ feature: match[1] as Feature, directive: link }));
  return { rules: collectRules(document, directiveNames(links)), gatewaySdl: withoutPurpose(supergraphSdl, links) };
}

/**
 * The name each directive has in this supergraph (link spec): the name it is imported under, else the
 * feature's namespace (`as:` or the feature's own name). Without a link, the default names still count, so a
 * supergraph that forgot its links fails closed.
 */
function directiveNames(links: FeatureLink[]): Record<Feature, string> {
  const names: Record<Feature, string> = { authenticated: 'authenticated', requiresScopes: 'requiresScopes', policy: 'policy' };
  for (const { feature, directive } of links) {
    names[feature] = importedName(directive, feature) ?? stringValue(argument(directive, 'as')) ?? feature;
  }
  return names;
}

function withoutPurpose(sdl: string, links: FeatureLink[]): string {
  const cuts = links
    .map(({ directive }) => directive.arguments?.find((arg) => arg.name.value === 'for')?.loc)
    .filter((loc) => loc !== undefined)
    .sort((a, b) => b.start - a.start);
  // Commas are insignificant in GraphQL, so cutting just the argument leaves a valid document.
  return cuts.reduce((text, loc) => text.slice(0, loc.start) + text.slice(loc.end), sdl);
}

/** Types and fields of every kind are read: the directives' own locations already limit where they occur. */
function collectRules(document: DocumentNode, names: Record<Feature, string>): AuthorizationRules {
  const types = new Map<string, Requirement>();
  const fields = new Map<string, Requirement>();
  const add = (map: Map<string, Requirement>, key: string, found: Requirement | undefined) => {
    if (found) map.set(key, both(map.get(key), found));
  };
  for (const definition of document.definitions) {
    if (!isTypeDefinitionNode(definition) && !isTypeExtensionNode(definition)) continue;
    const typeName = definition.name.value;
    add(types, typeName, requirementOf(definition.directives, names));
    for (const field of 'fields' in definition ? (definition.fields ?? []) : []) {
      add(fields, `${typeName}.${field.name.value}`, requirementOf(field.directives, names));
    }
  }
  return { types, fields };
}

function requirementOf(
  directives: readonly ConstDirectiveNode[] | undefined,
  names: Record<Feature, string>,
): Requirement | undefined {
  let authenticated = false;
  const scopes: AnyOfAll[] = [];
  const policies: AnyOfAll[] = [];
  for (const directive of directives ?? []) {
    const name = directive.name.value;
    if (name === names.authenticated) authenticated = true;
    else if (name === names.requiresScopes) scopes.push(anyOfAll(argument(directive, 'scopes')));
    else if (name === names.policy) policies.push(anyOfAll(argument(directive, 'policies')));
  }
  return authenticated || scopes.length > 0 || policies.length > 0 ? { authenticated, scopes, policies } : undefined;
}

function both(a: Requirement | undefined, b: Requirement): Requirement {
  if (!a) return b;
  return {
    authenticated: a.authenticated || b.authenticated,
    scopes: [...a.scopes, ...b.scopes],
    policies: [...a.policies, ...b.policies],
  };
}

/** A list argument also accepts a single item (input coercion), at either level. */
function anyOfAll(value: ConstValueNode | undefined): AnyOfAll {
  const listOf = (v: ConstValueNode) => (v.kind === Kind.LIST ? v.values : [v]);
  if (!value) return [];
  return listOf(value).map((inner) => listOf(inner).map(stringValue).filter((s) => s !== undefined));
}
