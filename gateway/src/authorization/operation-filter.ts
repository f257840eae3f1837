/** One operation, filtered for one kind of caller: what stays, what is refused, and where nulls go. */
import {
  getNamedType,
  isAbstractType,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  isUnionType,
  Kind,
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
import type { AuthorizationRules } from './rules.ts';
import { type Caller, satisfies } from './caller.ts';

/** One step along a response path: a response key (with the field's type), or "only objects of these types". */
export type Step = { kind: 'field'; key: string; type: GraphQLOutputType } | { kind: 'type'; names: ReadonlySet<string> };
export type ErrorPath = readonly string[];

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
export const TYPENAME_ALIAS = '__authzTypename';
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

export function withSelections<T extends FieldNode | InlineFragmentNode | FragmentDefinitionNode | OperationDefinitionNode>(
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

export class OperationFilter {
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
