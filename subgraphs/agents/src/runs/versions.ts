/**
 * Which version of a definition runs: the one a label points at now, or one named by number. A workflow's
 * document is its YAML read again; an agent's is what its version declares.
 */
import type { Database, Transaction } from '@jarvis/platform/db';
import { badUserInput, notFound } from '@jarvis/platform/errors';
import { isUuid } from '@jarvis/platform/ids';
import type { Definition, DefinitionVersion } from '../definitions/store.ts';
import { definitionsByIds, versionNumbered } from '../definitions/store.ts';
import { labelNamed } from '../labels/store.ts';
import { readYaml } from '../validation/yaml-source.ts';
import { runtimeError } from './engine/errors.ts';

export interface ResolvedVersion {
  definition: Definition;
  version: DefinitionVersion;
  /** The label it was found by; null when a number named it. */
  label: string | null;
}

export async function definitionNamed(tx: Transaction, name: string): Promise<Definition | undefined> {
  const [row] = await tx.query<{ id: string }>(`SELECT id FROM definitions WHERE name = $1`, [name]);
  return row ? (await definitionsByIds(tx, [row.id]))[0] : undefined;
}

/** The definition (by id or name) at `version`, or at the version `label` points at; NOT_FOUND when there is none. */
export async function resolveVersion(tx: Transaction, target: { definitionId?: string | null; name?: string | null; label: string; version?: number | null }): Promise<ResolvedVersion> {
  const definition = target.definitionId
    ? isUuid(target.definitionId)
      ? (await definitionsByIds(tx, [target.definitionId]))[0]
      : undefined
    : target.name
      ? await definitionNamed(tx, target.name)
      : undefined;
  if (!target.definitionId && !target.name) throw badUserInput('name the definition to run: definitionId or name');
  if (!definition) throw notFound(`no definition ${target.definitionId ?? target.name}`);
  if (target.version !== undefined && target.version !== null) {
    const version = await versionNumbered(tx, definition.id, target.version);
    if (!version) throw notFound(`${definition.name} has no version ${target.version}`);
    return { definition, version, label: null };
  }
  const label = await labelNamed(tx, definition.id, target.label);
  if (!label) throw notFound(`${definition.name} has no label ${target.label}: publish a version first, or name a version`);
  return { definition, version: (await versionNumbered(tx, definition.id, label.version))!, label: target.label };
}

/** The document a run of the version works from. */
export function documentOf(resolved: ResolvedVersion): Record<string, unknown> {
  const { declared, source } = resolved.version;
  if ('agent' in declared) return declared.agent as unknown as Record<string, unknown>;
  return readYaml(source).value as Record<string, unknown>;
}

/** For a run's sub-workflows and agent steps: a definition of the tenant by name, at a label or a version number. */
export async function loadDefinition(db: Database, tenantId: string, name: string, version: string | undefined) {
  const number = version !== undefined && /^\d+$/.test(version) ? Number(version) : undefined;
  try {
    const resolved = await db.withTenant(tenantId, (tx) => resolveVersion(tx, { name, label: number === undefined ? (version ?? 'production') : 'production', version: number ?? null }));
    return { kind: resolved.definition.kind, document: documentOf(resolved) };
  } catch (error) {
    throw runtimeError((error as Error).message, 'NOT_FOUND');
  }
}
