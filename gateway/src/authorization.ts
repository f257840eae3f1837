import {
  getNamedType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isAbstractType,
  isCompositeType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  isTypeDefinitionNode,
  isTypeExtensionNode,
  isUnionType,
  Kind,
  parse,
  visit,
  type ASTNode,
  type ConstDirectiveNode,
  type ConstValueNode,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type FragmentSpreadNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLInterfaceType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type InlineFragmentNode,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import { ANONYMOUS, type Principal } from '@jarvis/platform';
import {
  rewritten,
  withOperation,
  wrapExecutor,
  type GatewayExecutor,
  type GatewayInterface,
  type GatewayRequestContext,
  type RewrittenOperation,
} from './gateway-wrapper.ts';
import { argument, importedName, linksTo, stringValue } from './links.ts';

/*
 * Federation 2.6 authorization directives (@authenticated, @requiresScopes, @policy) enforced the way Apollo
 * Router does (apollo-router/src/plugins/authorization): unauthorized fields are removed from the operation
 * before planning, come back null with an UNAUTHORIZED_FIELD_OR_TYPE error, and an operation with nothing
 * left is not executed at all.
 */

// ---------------------------------------------------------------------------------------------------------
// Rules, read from the supergraph

/** `[["a", "b"], ["c"]]`: any one of the inner lists, all of its entries — (a AND b) OR c. */
type AnyOfAll = readonly (readonly string[])[];

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

// ---------------------------------------------------------------------------------------------------------
// The caller, as far as authorization is concerned

interface Caller {
  authenticated: boolean;
  scopes: readonly string[];
  permissions: readonly string[];
  /** Equal for callers every rule treats alike: only the scopes and permissions some rule names count. */
  key: string;
}

function callerOf(principal: Principal, scopesNamed: ReadonlySet<string>, policiesNamed: ReadonlySet<string>): Caller {
  const scopes = principal.scopes.filter((scope) => scopesNamed.has(scope)).sort();
  const permissions = principal.permissions.filter((permission) => policiesNamed.has(permission)).sort();
  const authenticated = principal.tenantId !== null;
  return { authenticated, scopes, permissions, key: JSON.stringify([authenticated, scopes, permissions]) };
}

/** Policy names are Jarvis permission names: a policy holds when the caller has that permission. */
function satisfies(requirement: Requirement | undefined, caller: Caller): boolean {
  if (!requirement) return true;
  if (requirement.authenticated && !caller.authenticated) return false;
  return (
    requirement.scopes.every((rule) => anyOfAllHeld(rule, caller.scopes)) &&
    requirement.policies.every((rule) => anyOfAllHeld(rule, caller.permissions))
  );
}

/** An empty outer list demands nothing (Router reads it the same way). */
function anyOfAllHeld(rule: AnyOfAll, held: readonly string[]): boolean {
  return rule.length === 0 || rule.some((all) => all.every((name) => held.includes(name)));
}

function namesIn(requirements: Iterable<Requirement>, pick: (r: Requirement) => readonly AnyOfAll[]): Set<string> {
  const names = new Set<string>();
  for (const requirement of requirements) for (const rule of pick(requirement)) for (const all of rule) for (const n of all) names.add(n);
  return names;
}

// ---------------------------------------------------------------------------------------------------------
// One operation, filtered for one kind of caller

/** One step along a response path: a response key (with the field's type), or "only objects of these types". */
type Step = { kind: 'field'; key: string; type: GraphQLOutputType } | { kind: 'type'; names: ReadonlySet<string> };
type ErrorPath = readonly string[];

interface Findings {
  /** Error paths as Router writes them: response keys, "@" for list items, "... on T" for a type condition. */
  unauthorized: ErrorPath[];
  /** Response paths of removed fields; each reads null unless another selection still provides it. */
  nulls: Step[][];
  /** Response paths of objects carrying the injected __typename, removed again before the client sees them. */
  typenames: Step[][];
}

interface Filtered {
  selections: readonly SelectionNode[];
  findings: Findings;
}

/** The outcome for one selection: what stays (nothing when removed) and what was found beneath. */
interface Outcome {
  kept?: SelectionNode;
  findings: Findings;
}

/**
 * Merging nulls into objects reached through a type condition needs each object's concrete type, so the
 * filtered operation asks for it under this alias wherever that is the case.
 */
const TYPENAME_ALIAS = '__authzTypename';
const TYPENAME_FIELD: FieldNode = {
  kind: Kind.FIELD,
  alias: { kind: Kind.NAME, value: TYPENAME_ALIAS },
  name: { kind: Kind.NAME, value: '__typename' },
};

const noFindings = (): Findings => ({ unauthorized: [], nulls: [], typenames: [] });

function prefixed(findings: Findings, errorPrefix: ErrorPath, stepPrefix: readonly Step[]): Findings {
  return {
    unauthorized: findings.unauthorized.map((path) => [...errorPrefix, ...path]),
    nulls: findings.nulls.map((path) => [...stepPrefix, ...path]),
    typenames: findings.typenames.map((path) => [...stepPrefix, ...path]),
  };
}

function append(into: Findings, findings: Findings) {
  into.unauthorized.push(...findings.unauthorized);
  into.nulls.push(...findings.nulls);
  into.typenames.push(...findings.typenames);
}

function withSelections<T extends FieldNode | InlineFragmentNode | FragmentDefinitionNode | OperationDefinitionNode>(
  node: T,
  selections: readonly SelectionNode[],
): T {
  return { ...node, selectionSet: { kind: Kind.SELECTION_SET, selections } };
}

/** "@" per list level of a field's type, as Router marks list items in unauthorized paths. */
function listMarkers(type: GraphQLOutputType): string[] {
  const markers: string[] = [];
  for (let t = type; !('name' in t); t = t.ofType) if (isListType(t)) markers.push('@');
  return markers;
}

class OperationFilter {
  private readonly filteredFragments = new Map<string, Filtered>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly rules: AuthorizationRules,
    private readonly caller: Caller,
    private readonly fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  ) {}

  typeAllowed(type: GraphQLNamedType): boolean {
    return satisfies(this.rules.types.get(type.name), this.caller);
  }

  private fragment(name: string): Filtered | undefined {
    const definition = this.fragments.get(name);
    const condition = definition && this.compositeType(definition.typeCondition.name.value);
    if (!definition || !condition) return undefined;
    let filtered = this.filteredFragments.get(name);
    if (!filtered) {
      filtered = this.selectionSet(definition.selectionSet, condition);
      this.filteredFragments.set(name, filtered);
    }
    return filtered;
  }

  /** A fragment definition as the filtered operation uses it. */
  fragmentDefinition(name: string): FragmentDefinitionNode | undefined {
    const definition = this.fragments.get(name);
    const filtered = this.fragment(name);
    if (!definition || !filtered || filtered.findings.unauthorized.length === 0) return definition;
    return withSelections(definition, filtered.selections);
  }

  selectionSet(selectionSet: SelectionSetNode, parent: GraphQLCompositeType): Filtered {
    const kept: SelectionNode[] = [];
    const findings = noFindings();
    for (const selection of selectionSet.selections) {
      const outcome = this.selection(selection, parent);
      if (outcome.kept) kept.push(outcome.kept);
      append(findings, outcome.findings);
    }
    const throughTypeCondition = [...findings.nulls, ...findings.typenames].some((path) => path[0]?.kind === 'type');
    if (throughTypeCondition && kept.length > 0) {
      kept.push(TYPENAME_FIELD);
      findings.typenames.push([]);
    }
    return { selections: kept, findings };
  }

  private selection(selection: SelectionNode, parent: GraphQLCompositeType): Outcome {
    switch (selection.kind) {
      case Kind.FIELD:
        return this.field(selection, parent);
      case Kind.INLINE_FRAGMENT:
        return this.inlineFragment(selection, parent);
      case Kind.FRAGMENT_SPREAD:
        return this.fragmentSpread(selection, parent);
    }
  }

  private field(node: FieldNode, parent: GraphQLCompositeType): Outcome {
    const name = node.name.value;
    const field = restrictableField(parent, name);
    if (!field) return { kept: node, findings: noFindings() };
    const key = node.alias?.value ?? name;
    const step: Step = { kind: 'field', key, type: field.type };
    const errorPath = [key, ...listMarkers(field.type)];
    if (!this.fieldAllowed(parent, field, node)) {
      return { findings: { unauthorized: [errorPath], nulls: [[step]], typenames: [] } };
    }
    const returned = getNamedType(field.type);
    if (!node.selectionSet || !isCompositeType(returned)) return { kept: node, findings: noFindings() };
    const inner = this.selectionSet(node.selectionSet, returned);
    if (inner.findings.unauthorized.length === 0) return { kept: node, findings: noFindings() };
    const findings = prefixed(inner.findings, errorPath, [step]);
    if (inner.selections.length === 0) {
      // Emptied by removals below it, the field goes too (Router does the same), without an error of its own.
      findings.nulls.push([step]);
      return { findings };
    }
    return { kept: withSelections(node, inner.selections), findings };
  }

  private inlineFragment(node: InlineFragmentNode, parent: GraphQLCompositeType): Outcome {
    const conditionName = node.typeCondition?.name.value;
    const condition = conditionName ? this.compositeType(conditionName) : parent;
    if (!condition) return { kept: node, findings: noFindings() };
    const errorPrefix = conditionName ? [`... on ${conditionName}`] : [];
    const stepPrefix = this.typeSteps(parent, condition);
    if (conditionName && !this.typeAllowed(condition)) {
      return { findings: this.removedFragment(node.selectionSet, condition, errorPrefix, stepPrefix) };
    }
    const inner = this.selectionSet(node.selectionSet, condition);
    if (inner.findings.unauthorized.length === 0) return { kept: node, findings: noFindings() };
    const findings = prefixed(inner.findings, errorPrefix, stepPrefix);
    if (inner.selections.length === 0) return { findings };
    return { kept: withSelections(node, inner.selections), findings };
  }

  private fragmentSpread(node: FragmentSpreadNode, parent: GraphQLCompositeType): Outcome {
    const definition = this.fragments.get(node.name.value);
    const condition = definition && this.compositeType(definition.typeCondition.name.value);
    if (!definition || !condition) return { kept: node, findings: noFindings() };
    const stepPrefix = this.typeSteps(parent, condition);
    if (!this.typeAllowed(condition)) {
      const errorPrefix = [`... on ${condition.name}`];
      return { findings: this.removedFragment(definition.selectionSet, condition, errorPrefix, stepPrefix) };
    }
    const inner = this.fragment(node.name.value)!;
    if (inner.findings.unauthorized.length === 0) return { kept: node, findings: noFindings() };
    // Router reports what a named fragment loses at the spread, without a fragment element in the path.
    const findings = prefixed(inner.findings, [], stepPrefix);
    return { kept: inner.selections.length > 0 ? node : undefined, findings };
  }

  /** A fragment on a type the caller may not see: its fields read null on the objects it applies to. */
  private removedFragment(
    selectionSet: SelectionSetNode,
    condition: GraphQLCompositeType,
    errorPrefix: ErrorPath,
    stepPrefix: readonly Step[],
  ): Findings {
    const nulls = this.fieldPaths(selectionSet, condition).map((path) => [...stepPrefix, ...path]);
    return { unauthorized: [errorPrefix], nulls, typenames: [] };
  }

  /** The response keys a selection set puts on its object, through its fragments. */
  private fieldPaths(selectionSet: SelectionSetNode, parent: GraphQLCompositeType): Step[][] {
    const paths: Step[][] = [];
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        const field = restrictableField(parent, name);
        if (field) paths.push([{ kind: 'field', key: selection.alias?.value ?? name, type: field.type }]);
        continue;
      }
      const nested = this.fragmentOf(selection, parent);
      if (!nested?.condition) continue;
      const steps = this.typeSteps(parent, nested.condition);
      for (const path of this.fieldPaths(nested.selectionSet, nested.condition)) paths.push([...steps, ...path]);
    }
    return paths;
  }

  /**
   * Router's rules for a field: its own requirements and its return type's; on an interface, also those of
   * the same field on every implementation; for an abstract return type, the requirements of every possible
   * type when the selection reads more than __typename from them.
   */
  private fieldAllowed(parent: GraphQLCompositeType, field: GraphQLField<unknown, unknown>, node: FieldNode) {
    return (
      this.fieldRequirementsMet(parent.name, field) &&
      !this.anImplementationDenies(parent, field.name) &&
      !this.exposesDeniedType(getNamedType(field.type), node.selectionSet)
    );
  }

  private fieldRequirementsMet(typeName: string, field: GraphQLField<unknown, unknown>): boolean {
    return satisfies(this.rules.fields.get(`${typeName}.${field.name}`), this.caller) && this.typeAllowed(getNamedType(field.type));
  }

  private anImplementationDenies(parent: GraphQLCompositeType, fieldName: string): boolean {
    if (!isInterfaceType(parent)) return false;
    return this.implementations(parent).some((type) => {
      const field = type.getFields()[fieldName];
      return field !== undefined && !this.fieldRequirementsMet(type.name, field);
    });
  }

  private exposesDeniedType(returned: GraphQLNamedType, selectionSet: SelectionSetNode | undefined): boolean {
    if (!selectionSet || !isAbstractType(returned)) return false;
    const denied = this.implementations(returned).filter((type) => !this.typeAllowed(type));
    return denied.length > 0 && this.readsFieldsOf(selectionSet, denied);
  }

  /**
   * Whether the selection reads a field other than __typename from objects of these types. Router looks at
   * direct fields only; fragments without a type condition or on an abstract type are looked through here
   * too, since `{ node { ... { secret } } }` reads the same fields as `{ node { secret } }`. A fragment on an
   * object type is judged by that type's own requirements.
   */
  private readsFieldsOf(selectionSet: SelectionSetNode, types: readonly (GraphQLObjectType | GraphQLInterfaceType)[]): boolean {
    return selectionSet.selections.some((selection) => {
      if (selection.kind === Kind.FIELD) return !selection.name.value.startsWith('__');
      const nested = this.fragmentOf(selection, undefined);
      if (!nested) return false;
      if (!nested.condition) return this.readsFieldsOf(nested.selectionSet, types);
      const condition = nested.condition;
      if (!isAbstractType(condition)) return false;
      const narrowed = types.filter((type) => type === condition || this.schema.isSubType(condition, type));
      return narrowed.length > 0 && this.readsFieldsOf(nested.selectionSet, narrowed);
    });
  }

  /** A fragment's selection set and type condition; without a condition, the parent's type. */
  private fragmentOf(
    selection: InlineFragmentNode | FragmentSpreadNode,
    parent: GraphQLCompositeType | undefined,
  ): { condition: GraphQLCompositeType | undefined; selectionSet: SelectionSetNode } | undefined {
    const definition = selection.kind === Kind.FRAGMENT_SPREAD ? this.fragments.get(selection.name.value) : selection;
    if (!definition) return undefined;
    const conditionName = definition.typeCondition?.name.value;
    const condition = conditionName ? this.compositeType(conditionName) : parent;
    if (conditionName && !condition) return undefined;
    return { condition, selectionSet: definition.selectionSet };
  }

  /** Objects implementing an interface (and interfaces extending it), or a union's members. */
  private implementations(type: GraphQLCompositeType): (GraphQLObjectType | GraphQLInterfaceType)[] {
    if (isInterfaceType(type)) {
      const { objects, interfaces } = this.schema.getImplementations(type);
      return [...objects, ...interfaces];
    }
    return isObjectType(type) ? [] : [...type.getTypes()];
  }

  /** A type condition that holds only for some of the parent's objects becomes a step checking the object's type. */
  private typeSteps(parent: GraphQLCompositeType, condition: GraphQLCompositeType): Step[] {
    const names = this.possibleTypeNames(condition);
    const covers = [...this.possibleTypeNames(parent)].every((name) => names.has(name));
    return covers ? [] : [{ kind: 'type', names }];
  }

  private possibleTypeNames(type: GraphQLCompositeType): Set<string> {
    if (isObjectType(type)) return new Set([type.name]);
    return new Set(this.schema.getPossibleTypes(type).map((t) => t.name));
  }

  private compositeType(name: string): GraphQLCompositeType | undefined {
    const type = this.schema.getType(name);
    return type && isCompositeType(type) ? type : undefined;
  }
}


/** The schema field a selection reads; none for introspection fields and __typename, which are never restricted. */
function restrictableField(parent: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  return name.startsWith('__') || isUnionType(parent) ? undefined : parent.getFields()[name];
}

// ---------------------------------------------------------------------------------------------------------
// The analysis of one operation for one kind of caller, and what it does to the response

export type Analysis =
  | { kind: 'unchanged' }
  | { kind: 'rejected'; unauthorized: readonly ErrorPath[] }
  | (RewrittenOperation & {
      kind: 'filtered';
      unauthorized: readonly ErrorPath[];
      nulls: readonly Step[][];
      typenames: readonly Step[][];
    });

const UNCHANGED: Analysis = Object.freeze({ kind: 'unchanged' });

export interface AnalysisRequest {
  /** The hash of the operation's source (Apollo Server's `queryHash`): with the caller, the cache key. */
  queryHash: string;
  document: DocumentNode;
  operationName?: string | null;
  principal: Principal;
}

export interface AuthorizerOptions {
  /** Refuse the whole request when anything in it is unauthorized, instead of answering the rest. */
  rejectUnauthorized?: boolean;
  /** How many (operation, kind of caller) analyses to keep. */
  cacheSize?: number;
}

/**
 * Decides, per operation and kind of caller, what of the operation may run. Analyses are cached by document,
 * operation name and the caller's authorization-relevant attributes, so a repeated request is a map lookup.
 */
export function createAuthorizer(apiSchema: GraphQLSchema, rules: AuthorizationRules, options: AuthorizerOptions = {}) {
  const requirements = [...rules.types.values(), ...rules.fields.values()];
  const scopesNamed = namesIn(requirements, (r) => r.scopes);
  const policiesNamed = namesIn(requirements, (r) => r.policies);
  const cache = new LRUCache<string, Analysis>({ max: options.cacheSize ?? 1000 });

  return {
    analyze({ queryHash, document, operationName, principal }: AnalysisRequest): Analysis {
      if (requirements.length === 0) return UNCHANGED;
      const caller = callerOf(principal, scopesNamed, policiesNamed);
      const key = `${caller.key}\u0000${operationName ?? ''}\u0000${queryHash}`;
      const cached = cache.get(key);
      if (cached) return cached;
      const analysis = analyzeOperation(apiSchema, rules, document, operationName, caller, options);
      cache.set(key, analysis);
      return analysis;
    },
  };
}

export type Authorizer = ReturnType<typeof createAuthorizer>;

function analyzeOperation(
  schema: GraphQLSchema,
  rules: AuthorizationRules,
  document: DocumentNode,
  operationName: string | null | undefined,
  caller: Caller,
  { rejectUnauthorized = false }: AuthorizerOptions,
): Analysis {
  const operation = getOperationAST(document, operationName);
  const root = operation && schema.getRootType(operation.operation);
  // Operations the gateway cannot run anyway are left for it to refuse.
  if (!operation || !root) return UNCHANGED;
  const filter = new OperationFilter(schema, rules, caller, fragmentsOf(document));
  if (!filter.typeAllowed(root)) return { kind: 'rejected', unauthorized: [[]] };
  const { selections, findings } = filter.selectionSet(operation.selectionSet, root);
  if (findings.unauthorized.length === 0) return UNCHANGED;
  if (selections.length === 0 || rejectUnauthorized) return { kind: 'rejected', unauthorized: findings.unauthorized };
  const filtered = filteredDocument(withSelections(operation, selections), filter);
  return {
    kind: 'filtered',
    unauthorized: findings.unauthorized,
    ...rewritten(filtered.document, filtered.operation),
    nulls: findings.nulls,
    typenames: findings.typenames,
  };
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

/** The operation with the filtered fragments it still uses, and only the variables it still uses. */
function filteredDocument(
  operation: OperationDefinitionNode,
  filter: OperationFilter,
): { document: DocumentNode; operation: OperationDefinitionNode } {
  const used = { variables: new Set<string>(), fragments: new Set<string>() };
  collectUsages([operation.selectionSet, ...(operation.directives ?? [])], used);
  const fragments: FragmentDefinitionNode[] = [];
  // A Set visits what is added while it is being iterated, so this follows fragments used by fragments.
  for (const name of used.fragments) {
    const definition = filter.fragmentDefinition(name);
    if (!definition) continue;
    fragments.push(definition);
    collectUsages([definition.selectionSet, ...(definition.directives ?? [])], used);
  }
  const variableDefinitions = operation.variableDefinitions?.filter((v) => used.variables.has(v.variable.name.value));
  const filtered = { ...operation, variableDefinitions };
  return { document: { kind: Kind.DOCUMENT, definitions: [filtered, ...fragments] }, operation: filtered };
}

function collectUsages(nodes: readonly ASTNode[], used: { variables: Set<string>; fragments: Set<string> }) {
  for (const node of nodes) {
    visit(node, {
      Variable: (variable) => void used.variables.add(variable.name.value),
      FragmentSpread: (spread) => void used.fragments.add(spread.name.value),
    });
  }
}

/** Null where the filtered operation left fields out, null propagation as GraphQL does it, and the errors. */
export function completeResult(result: ExecutionResult, analysis: Extract<Analysis, { kind: 'filtered' }>): ExecutionResult {
  let data = result.data;
  if (data) {
    if (analysis.nulls.some((path) => nullWhereAbsent(data as ResponseObject, path, 0))) data = null;
    else for (const path of analysis.typenames) forgetTypename(data, path, 0);
  }
  return { ...result, data, errors: [...(result.errors ?? []), ...unauthorizedErrors(analysis.unauthorized)] };
}

type ResponseObject = Record<string, unknown>;

export function unauthorizedErrors(paths: readonly ErrorPath[]): GraphQLError[] {
  return paths.map(
    (path) => new GraphQLError('Unauthorized field or type', { path, extensions: { code: 'UNAUTHORIZED_FIELD_OR_TYPE' } }),
  );
}

/**
 * Puts null at the path's last field in every object the path reaches (every list item on the way), unless a
 * selection that stayed still provides the key. Returns true when the null must replace `object` itself: a
 * non-null field became null.
 */
function nullWhereAbsent(object: ResponseObject, path: readonly Step[], at: number): boolean {
  const step = path[at]!;
  if (step.kind === 'type') return isOfType(object, step.names) && nullWhereAbsent(object, path, at + 1);
  if (at === path.length - 1) {
    if (step.key in object) return false;
    object[step.key] = null;
    return isNonNullType(step.type);
  }
  const value = object[step.key];
  if (value === null || value === undefined || !nullWhereAbsentIn(value, step.type, path, at + 1)) return false;
  object[step.key] = null;
  return isNonNullType(step.type);
}

function nullWhereAbsentIn(value: unknown, type: GraphQLOutputType, path: readonly Step[], at: number): boolean {
  const nullable = isNonNullType(type) ? type.ofType : type;
  if (!isListType(nullable)) return nullWhereAbsent(value as ResponseObject, path, at);
  const items = value as unknown[];
  for (let i = 0; i < items.length; i++) {
    if (items[i] === null || !nullWhereAbsentIn(items[i], nullable.ofType, path, at)) continue;
    items[i] = null;
    if (isNonNullType(nullable.ofType)) return true;
  }
  return false;
}

/** Without its type (a merged field whose copy carrying it was removed), no null is added: never a wrong one. */
function isOfType(object: ResponseObject, names: ReadonlySet<string>): boolean {
  const typename = object[TYPENAME_ALIAS];
  return typeof typename === 'string' && names.has(typename);
}

function forgetTypename(value: unknown, path: readonly Step[], at: number): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) return value.forEach((item) => forgetTypename(item, path, at));
  const object = value as ResponseObject;
  const step = path[at];
  if (!step) delete object[TYPENAME_ALIAS];
  else if (step.kind === 'type') forgetTypename(object, path, at + 1);
  else forgetTypename(object[step.key], path, at + 1);
}

// ---------------------------------------------------------------------------------------------------------
// The gateway, wrapped

/** The gateway's API schema with its authorizer, as the gateway last loaded it. */
export interface AuthorizedSchema {
  apiSchema: GraphQLSchema;
  authorizer: Authorizer;
}

/**
 * Follows the gateway's schema: the API schema and an authorizer for it, rebuilt on every load, for operations
 * over HTTP (authorizingGateway) and over WebSocket alike.
 */
export function authorizedSchema(gateway: GatewayInterface, rules: AuthorizationRules, options: AuthorizerOptions = {}): () => AuthorizedSchema {
  let current: AuthorizedSchema | undefined;
  gateway.onSchemaLoadOrUpdate(({ apiSchema }) => {
    current = { apiSchema, authorizer: createAuthorizer(apiSchema, rules, options) };
  });
  return () => {
    if (!current) throw new Error('the gateway executed an operation before loading its schema');
    return current;
  };
}

/** Wraps a gateway so every operation is authorized before it is planned. */
export function authorizingGateway(gateway: GatewayInterface, schema: () => AuthorizedSchema): GatewayInterface {
  return wrapExecutor(gateway, (execute) => authorizingExecutor(execute, () => schema().authorizer));
}

function authorizingExecutor(execute: GatewayExecutor, authorizer: () => Authorizer): GatewayExecutor {
  return async (requestContext) => {
    const analysis = authorizer().analyze({
      queryHash: requestContext.queryHash,
      document: requestContext.document,
      operationName: requestContext.request.operationName,
      principal: (requestContext.context as { principal?: Principal }).principal ?? ANONYMOUS,
    });
    if (analysis.kind === 'unchanged') return execute(requestContext);
    const invalidVariables = variableErrors(requestContext);
    if (invalidVariables) return { errors: invalidVariables };
    if (analysis.kind === 'rejected') return { data: null, errors: unauthorizedErrors(analysis.unauthorized) };
    return completeResult(await execute(withOperation(requestContext, analysis)), analysis);
  };
}

/**
 * Variables that do not coerce make a bad request whoever asks, answered as @apollo/gateway answers it (400,
 * BAD_USER_INPUT). It must be checked against the original operation: filtering may drop the variable.
 */
function variableErrors({ schema, operation, request }: GatewayRequestContext) {
  return getVariableValues(schema, operation.variableDefinitions ?? [], request.variables ?? {}).errors;
}

