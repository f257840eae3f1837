import type { Transaction } from '@jarvis/platform/db';
import type { Declared, DefinitionKind } from '../validation/index.ts';

export interface Definition {
  id: string;
  tenantId: string;
  name: string;
  kind: DefinitionKind;
  createdById: string | null;
  createdAt: Date;
}

export interface DefinitionVersion {
  tenantId: string;
  definitionId: string;
  number: number;
  source: string;
  declared: Declared;
  createdById: string | null;
  createdAt: Date;
}

const DEFINITION = `id, tenant_id AS "tenantId", name, kind, created_by AS "createdById", created_at AS "createdAt"`;
const VERSION = `tenant_id AS "tenantId", definition_id AS "definitionId", number, source, declared,
  created_by AS "createdById", created_at AS "createdAt"`;

export async function insertDefinition(tx: Transaction, definition: Omit<Definition, 'createdAt'>): Promise<Definition> {
  const [row] = await tx.query<Definition>(
    `INSERT INTO definitions (id, tenant_id, name, kind, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING ${DEFINITION}`,
    [definition.id, definition.tenantId, definition.name, definition.kind, definition.createdById],
  );
  return row!;
}

export function definitionsByIds(tx: Transaction, ids: string[]): Promise<Definition[]> {
  return tx.query<Definition>(`SELECT ${DEFINITION} FROM definitions WHERE id = ANY($1::uuid[])`, [ids]);
}

/** The newest definitions, of `kind` when given. */
export function latestDefinitions(tx: Transaction, kind: DefinitionKind | null, limit: number): Promise<Definition[]> {
  return tx.query<Definition>(
    `SELECT ${DEFINITION} FROM definitions WHERE $1::text IS NULL OR kind = $1 ORDER BY created_at DESC, id LIMIT $2`,
    [kind, limit],
  );
}

/** The definition, locked until the transaction ends: its versions and labels change one writer at a time. */
export async function lockDefinition(tx: Transaction, id: string): Promise<Definition | undefined> {
  const [row] = await tx.query<Definition>(`SELECT ${DEFINITION} FROM definitions WHERE id = $1 FOR UPDATE`, [id]);
  return row;
}

/** The kind of each definition among `names` that exists. */
export async function kindsByName(tx: Transaction, names: string[]): Promise<Map<string, DefinitionKind>> {
  const rows = await tx.query<{ name: string; kind: DefinitionKind }>(`SELECT name, kind FROM definitions WHERE name = ANY($1::text[])`, [names]);
  return new Map(rows.map((row) => [row.name, row.kind]));
}

/** Adds the definition's next version (1 for a new one); call with the definition locked. */
export async function appendVersion(tx: Transaction, version: Omit<DefinitionVersion, 'number' | 'createdAt'>): Promise<DefinitionVersion> {
  const [row] = await tx.query<DefinitionVersion>(
    `INSERT INTO definition_versions (tenant_id, definition_id, number, source, declared, created_by)
     SELECT $1::uuid, $2::uuid, coalesce(max(number), 0) + 1, $3::text, $4::jsonb, $5::uuid FROM definition_versions WHERE definition_id = $2
     RETURNING ${VERSION}`,
    [version.tenantId, version.definitionId, version.source, JSON.stringify(version.declared), version.createdById],
  );
  return row!;
}

export function versionsOf(tx: Transaction, definitionId: string, limit: number): Promise<DefinitionVersion[]> {
  return tx.query<DefinitionVersion>(
    `SELECT ${VERSION} FROM definition_versions WHERE definition_id = $1 ORDER BY number DESC LIMIT $2`,
    [definitionId, limit],
  );
}

export async function versionNumbered(tx: Transaction, definitionId: string, number: number): Promise<DefinitionVersion | undefined> {
  const [row] = await tx.query<DefinitionVersion>(`SELECT ${VERSION} FROM definition_versions WHERE definition_id = $1 AND number = $2`, [
    definitionId,
    number,
  ]);
  return row;
}

/** Versions by `<definition id>/<number>`. */
export function versionsNumbered(tx: Transaction, keys: { definitionId: string; number: number }[]): Promise<DefinitionVersion[]> {
  return tx.query<DefinitionVersion>(
    `SELECT ${VERSION} FROM definition_versions
     WHERE (definition_id, number) IN (SELECT * FROM unnest($1::uuid[], $2::int[]))`,
    [keys.map((key) => key.definitionId), keys.map((key) => key.number)],
  );
}

export function latestVersions(tx: Transaction, definitionIds: string[]): Promise<DefinitionVersion[]> {
  return tx.query<DefinitionVersion>(
    `SELECT DISTINCT ON (definition_id) ${VERSION} FROM definition_versions
     WHERE definition_id = ANY($1::uuid[]) ORDER BY definition_id, number DESC`,
    [definitionIds],
  );
}
