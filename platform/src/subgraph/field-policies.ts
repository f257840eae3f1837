/**
 * The subgraph's side of `@policy`: the rule written on a field in the subgraph's SDL is checked where the field
 * resolves, so a caller that reaches a subgraph directly with a signed principal meets the same rule the gateway
 * enforces (defence in depth). Services keep only the checks that are not a field's rule.
 */
import {
  defaultFieldResolver,
  isTypeDefinitionNode,
  isTypeExtensionNode,
  Kind,
  parse,
  type ConstDirectiveNode,
  type ConstValueNode,
  type DefinitionNode,
  type DocumentNode,
  type GraphQLFieldResolver,
} from 'graphql';
import { forbidden } from '../errors.ts';
import { requireTenant } from '../contracts/permissions.ts';
import type { Principal } from '../contracts/principal.ts';
import { argument, importedName, linksTo, stringValue } from '../links.ts';

/** `[["a", "b"], ["c"]]`: any one of the inner lists, all of its entries — (a AND b) OR c. */
export type PolicyRule = readonly (readonly string[])[];

/**
 * What the caller must hold, as services' `requirePermission` says it: UNAUTHENTICATED when anonymous, FORBIDDEN
 * naming the permission otherwise. An empty rule demands nothing (as the gateway reads it).
 */
export function requirePolicy(principal: Principal, rule: PolicyRule): void {
  if (rule.length === 0) return;
  requireTenant(principal);
  if (rule.some((all) => all.every((permission) => principal.permissions.includes(permission)))) return;
  throw forbidden(`this needs the ${rule.map((all) => all.join(' and ')).join(' or ')} permission`);
}

/** Each field's @policy rules in a subgraph's SDL, by coordinate `Type.field`; every one of them must hold. */
export function fieldPolicies(sdl: string): Map<string, PolicyRule[]> {
  const document = parse(sdl);
  const policy = policyDirectiveName(document);
  const found = new Map<string, PolicyRule[]>();
  for (const definition of document.definitions) {
    if (!isTypeDefinitionNode(definition) && !isTypeExtensionNode(definition)) continue;
    const typeName = definition.name.value;
    if (rulesOf(definition.directives, policy).length) {
      throw new Error(`${typeName}: @policy on a type is not checked by subgraphs; put it on its fields`);
    }
    for (const field of 'fields' in definition ? (definition.fields ?? []) : []) {
      const rules = rulesOf(field.directives, policy);
      if (rules.length === 0) continue;
      if (!isObjectType(definition)) {
        throw new Error(`${typeName}.${field.name.value}: @policy is checked by subgraphs on object types' fields only`);
      }
      found.set(`${typeName}.${field.name.value}`, rules);
    }
  }
  return found;
}

/**
 * The resolver map with every field that carries @policy in `sdl` guarded: the caller (`context.principal`) must
 * satisfy the rule before the field resolves — before it subscribes, for a subscription. A field without a
 * resolver of its own is guarded around the default one.
 */
export function withFieldPolicies<R extends object>(sdl: string, resolvers: R): R {
  const guarded: Record<string, Record<string, unknown>> = { ...(resolvers as Record<string, Record<string, unknown>>) };
  for (const [coordinate, rules] of fieldPolicies(sdl)) {
    const [typeName, fieldName] = coordinate.split('.') as [string, string];
    guarded[typeName] = { ...guarded[typeName], [fieldName]: guardField(guarded[typeName]?.[fieldName], rules) };
  }
  return guarded as R;
}

type Resolve = GraphQLFieldResolver<unknown, { principal: Principal }>;
type FieldConfig = { subscribe?: Resolve; resolve?: Resolve };

function guardField(field: unknown, rules: PolicyRule[]): Resolve | FieldConfig {
  if (typeof field === 'function') return guard(field as Resolve, rules);
  const config = (field ?? {}) as FieldConfig;
  if (config.subscribe) return { ...config, subscribe: guard(config.subscribe, rules) };
  return { ...config, resolve: guard(config.resolve ?? defaultFieldResolver, rules) };
}

function guard(resolve: Resolve, rules: PolicyRule[]): Resolve {
  return (parent, args, context, info) => {
    for (const rule of rules) requirePolicy(context.principal, rule);
    return resolve(parent, args, context, info);
  };
}

function isObjectType(definition: DefinitionNode): boolean {
  return definition.kind === Kind.OBJECT_TYPE_DEFINITION || definition.kind === Kind.OBJECT_TYPE_EXTENSION;
}

function rulesOf(directives: readonly ConstDirectiveNode[] | undefined, policy: string): PolicyRule[] {
  return (directives ?? []).filter((d) => d.name.value === policy).map((d) => anyOfAll(argument(d, 'policies')));
}

/** A list argument also accepts a single item (input coercion), at either level. */
function anyOfAll(value: ConstValueNode | undefined): PolicyRule {
  const listOf = (v: ConstValueNode) => (v.kind === Kind.LIST ? v.values : [v]);
  return value ? listOf(value).map((inner) => listOf(inner).flatMap((v) => (v.kind === Kind.STRING ? [v.value] : []))) : [];
}

const FEDERATION = /^https:\/\/specs\.apollo\.dev\/federation\//;

/**
 * What @policy is called in this SDL (link spec): the name the federation @link imports it under, else its
 * namespaced name (`federation__policy`, or the link's `as`). Without a federation link, plain `policy`.
 */
function policyDirectiveName(document: DocumentNode): string {
  const [federation] = linksTo(document, FEDERATION);
  if (!federation) return 'policy';
  const { link } = federation;
  return importedName(link, 'policy') ?? `${stringValue(argument(link, 'as')) ?? 'federation'}__policy`;
}
