/**
 * Workflow and agent definitions of the caller's tenant: created with a first version, then added to, one
 * immutable version after another. A version is saved only when its YAML is valid for its kind and the other
 * definitions it names are the tenant's.
 */
import { randomUUID } from 'node:crypto';
import { requirePermission, requireTenant, type Principal } from '@jarvis/platform/contracts';
import { isUniqueViolation, type Database, type Transaction } from '@jarvis/platform/db';
import { AppError, ErrorCode, conflict, notFound } from '@jarvis/platform/errors';
import { isUuid } from '@jarvis/platform/ids';
import { checkInput, parseInput, tenantLoader } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { AddDefinitionVersionInput, CreateDefinitionInput } from '../generated/schema-types.ts';
import { checkSource, type CheckedSource, type DefinitionKind, type Problem } from '../validation/index.ts';
import { definitionName } from './names.ts';
import * as store from './store.ts';
import type { Definition, DefinitionVersion } from './store.ts';

const MAX_SOURCE_BYTES = 256 * 1024;
const source = z
  .string()
  .min(1, 'must not be empty')
  .refine((text) => Buffer.byteLength(text) <= MAX_SOURCE_BYTES, 'at most 256 KiB');
const createChecks = z.object({ name: definitionName, source });
const versionChecks = z.object({ definitionId: z.uuid('must be a definition id'), source });
const page = (max: number) => z.number().int().min(1, 'must be at least 1').max(max, `at most ${max}`);

export interface DefinitionValidation {
  valid: boolean;
  problems: Problem[];
}

export class DefinitionService {
  private readonly byId;
  private readonly latestById;
  /** Labels' versions in a list: one query for all of them. */
  private readonly byNumber;

  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
  ) {
    this.byId = tenantLoader(db, async (tx, ids) => new Map((await store.definitionsByIds(tx, ids)).map((d) => [d.id, d])));
    this.latestById = tenantLoader(db, async (tx, ids) => new Map((await store.latestVersions(tx, ids)).map((v) => [v.definitionId, v])));
    this.byNumber = tenantLoader(db, async (tx, ids) => new Map((await store.versionsNumbered(tx, ids.map(versionKeyParts))).map((v) => [versionKey(v), v])), isVersionKey);
  }

  async definitionsOf(tenantId: string, kind: DefinitionKind | null | undefined, first: number): Promise<Definition[]> {
    const limit = parseInput(z.object({ first: page(200) }), { first }).first;
    return this.db.withTenant(tenantId, (tx) => store.latestDefinitions(tx, kind ?? null, limit));
  }

  /** The tenant's definition; null when there is none. Entities resolve through here, so it checks the read permission itself. */
  async definition(id: string): Promise<Definition | null> {
    const tenantId = requirePermission(this.principal, 'agents:read');
    return this.byId.load({ tenantId, id });
  }

  async requireDefinition(id: string): Promise<Definition> {
    const definition = await this.definition(id);
    if (!definition) throw notFound(`no definition ${id}`);
    return definition;
  }

  async versionsOf(definition: Definition, first: number): Promise<DefinitionVersion[]> {
    const limit = parseInput(z.object({ first: page(100) }), { first }).first;
    return this.db.withTenant(definition.tenantId, (tx) => store.versionsOf(tx, definition.id, limit));
  }

  async version(tenantId: string, definitionId: string, number: number): Promise<DefinitionVersion | null> {
    return this.byNumber.load({ tenantId, id: versionKey({ definitionId, number }) });
  }

  /** Every definition has its first version from the start. */
  async latestVersion(definition: Definition): Promise<DefinitionVersion> {
    return (await this.latestById.load({ tenantId: definition.tenantId, id: definition.id }))!;
  }

  /** What createDefinition or addDefinitionVersion would say of this YAML, nothing saved. */
  async validate(kind: DefinitionKind, given: string): Promise<DefinitionValidation> {
    const tenantId = requireTenant(this.principal);
    const checked = checkSource(kind, parseInput(z.object({ source }), { source: given }).source);
    const problems = checked.problems.length ? checked.problems : await this.db.withTenant(tenantId, (tx) => unresolved(tx, checked));
    return { valid: problems.length === 0, problems };
  }

  async create(given: CreateDefinitionInput): Promise<Definition> {
    const tenantId = requirePermission(this.principal, 'agents:write');
    const input = checkInput(createChecks, given);
    const checked = valid(checkSource(input.kind, input.source));
    try {
      return await this.db.withTenant(tenantId, async (tx) => {
        refuse(await unresolved(tx, checked));
        const definition = await store.insertDefinition(tx, { id: randomUUID(), tenantId, name: input.name, kind: input.kind, createdById: this.author });
        await this.append(tx, definition, input.source, checked);
        return definition;
      });
    } catch (error) {
      if (isUniqueViolation(error, 'definitions_tenant_name')) throw conflict(`the tenant already has a definition named ${input.name}`, 'name');
      throw error;
    }
  }

  async addVersion(given: AddDefinitionVersionInput): Promise<DefinitionVersion> {
    const tenantId = requirePermission(this.principal, 'agents:write');
    const input = checkInput(versionChecks, given);
    const version = await this.db.withTenant(tenantId, async (tx) => {
      const definition = await store.lockDefinition(tx, input.definitionId);
      if (!definition) throw notFound(`no definition ${input.definitionId}`);
      const checked = valid(checkSource(definition.kind, input.source));
      refuse(await unresolved(tx, checked));
      return this.append(tx, definition, input.source, checked);
    });
    this.latestById.clear({ tenantId, id: version.definitionId });
    return version;
  }

  private append(tx: Transaction, definition: Definition, text: string, checked: CheckedSource): Promise<DefinitionVersion> {
    const version = { tenantId: definition.tenantId, definitionId: definition.id, source: text, declared: checked.declared!, createdById: this.author };
    return store.appendVersion(tx, version);
  }

  /** Definitions are the work of the member who wrote them; a service account's of no member. */
  private get author(): string | null {
    return this.principal.userId ?? null;
  }
}

const VERSION_KEY = /^([0-9a-f-]{36})\/(\d{1,9})$/i;
const versionKey = ({ definitionId, number }: { definitionId: string; number: number }) => `${definitionId}/${number}`;
const isVersionKey = (key: string) => VERSION_KEY.test(key) && isUuid(key.slice(0, 36));
function versionKeyParts(key: string) {
  const [, definitionId, number] = VERSION_KEY.exec(key)!;
  return { definitionId: definitionId!, number: Number(number) };
}

/** The definitions a valid document names that the tenant does not have, as problems at the names. */
async function unresolved(tx: Transaction, checked: CheckedSource): Promise<Problem[]> {
  if (checked.references.length === 0) return [];
  const kinds = await store.kindsByName(tx, [...new Set(checked.references.map((reference) => reference.name))]);
  return checked.references
    .filter((reference) => kinds.get(reference.name) !== reference.kind)
    .map((reference) => checked.place({ pointer: reference.pointer, message: `the tenant has no ${reference.kind.toLowerCase()} named ${reference.name}` }));
}

function valid(checked: CheckedSource): CheckedSource {
  refuse(checked.problems);
  return checked;
}

/** BAD_USER_INPUT naming the first problem's place (extensions line, column, path) and carrying them all. */
function refuse(problems: Problem[]): void {
  const [first] = problems;
  if (!first) return;
  const where = `line ${first.line}, column ${first.column}${first.path ? ` (${first.path})` : ''}`;
  throw new AppError(ErrorCode.BAD_USER_INPUT, `source: ${where}: ${first.message}`, {
    field: 'source',
    line: first.line,
    column: first.column,
    path: first.path,
    problems,
  });
}
