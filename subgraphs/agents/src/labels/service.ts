/**
 * Labels: names (production, staging, …) each pointing at one version of a definition. Publishing moves a label
 * to a version; rolling back moves it to where it pointed before the last publish not yet rolled back. Every
 * move is kept, and announced on the bus through the outbox.
 */
import { requirePermission, type Principal } from '@jarvis/platform/contracts';
import type { Database, Transaction } from '@jarvis/platform/db';
import { badUserInput, conflict, notFound } from '@jarvis/platform/errors';
import { writeEvent } from '@jarvis/platform/outbox';
import { checkInput, groupBy, parseInput, tenantLoader } from '@jarvis/platform/subgraph';
import { z } from 'zod';
import type { PublishDefinitionInput, RollbackDefinitionInput } from '../generated/schema-types.ts';
import { labelName } from '../definitions/names.ts';
import type { DefinitionService } from '../definitions/service.ts';
import * as definitions from '../definitions/store.ts';
import type { Definition, DefinitionVersion } from '../definitions/store.ts';
import { LABEL_MOVED_TOPIC, labelMovedEvent } from './events.ts';
import * as store from './store.ts';
import type { Label, LabelAction, LabelMove } from './store.ts';

const definitionId = z.uuid('must be a definition id');
const publishChecks = z.object({ definitionId, version: z.number().int().min(1, 'must be at least 1'), label: labelName });
const rollbackChecks = z.object({ definitionId, label: labelName });

/**
 * Where a rollback takes a label, from its moves newest first: back past the last publish that no rollback has
 * undone yet, to the version it moved from; null when that publish was the label's first.
 */
export function rollbackTarget(moves: readonly Pick<LabelMove, 'action' | 'fromVersion'>[]): number | null {
  let undone = 0;
  for (const move of moves) {
    if (move.action === 'ROLLBACK') undone += 1;
    else if (undone > 0) undone -= 1;
    else return move.fromVersion;
  }
  return null;
}

export class LabelService {
  private readonly byDefinition;

  constructor(
    private readonly db: Database,
    private readonly principal: Principal,
    private readonly outbox: { notify(): void },
    private readonly definitions: DefinitionService,
  ) {
    this.byDefinition = tenantLoader(db, async (tx, ids) => groupBy(await store.labelsOf(tx, ids), (label) => label.definitionId));
  }

  async labelsOf(definition: Definition): Promise<Label[]> {
    return (await this.byDefinition.load({ tenantId: definition.tenantId, id: definition.id })) ?? [];
  }

  async label(definition: Definition, name: string): Promise<Label | null> {
    return (await this.labelsOf(definition)).find((label) => label.name === name) ?? null;
  }

  async history(label: Label, first: number): Promise<LabelMove[]> {
    const limit = parseInput(z.object({ first: z.number().int().min(1).max(100, 'at most 100') }), { first }).first;
    return this.db.withTenant(label.tenantId, (tx) => store.movesOf(tx, label.definitionId, label.name, limit));
  }

  /** The version a rollback would move the label to. */
  async previousVersion(label: Label): Promise<DefinitionVersion | null> {
    const target = rollbackTarget(await this.db.withTenant(label.tenantId, (tx) => store.movesOf(tx, label.definitionId, label.name)));
    return target === null ? null : this.definitions.version(label.tenantId, label.definitionId, target);
  }

  async publish(given: PublishDefinitionInput): Promise<Label> {
    const tenantId = requirePermission(this.principal, 'agents:write');
    const input = checkInput(publishChecks, given);
    const label = await this.db.withTenant(tenantId, async (tx) => {
      const definition = await lockedDefinition(tx, input.definitionId);
      if (!(await definitions.versionNumbered(tx, definition.id, input.version))) {
        throw badUserInput(`definition ${definition.name} has no version ${input.version}`, 'version');
      }
      const current = await store.labelNamed(tx, definition.id, input.label);
      if (current?.version === input.version) return current;
      return this.move(tx, definition, input.label, current, 'PUBLISH', input.version);
    });
    return this.moved(label);
  }

  async rollback(given: RollbackDefinitionInput): Promise<Label> {
    const tenantId = requirePermission(this.principal, 'agents:write');
    const input = checkInput(rollbackChecks, given);
    const label = await this.db.withTenant(tenantId, async (tx) => {
      const definition = await lockedDefinition(tx, input.definitionId);
      const current = await store.labelNamed(tx, definition.id, input.label);
      if (!current) throw notFound(`definition ${definition.name} has no label ${input.label}`);
      const target = rollbackTarget(await store.movesOf(tx, definition.id, input.label));
      if (target === null) throw conflict(`label ${input.label} of ${definition.name} has no earlier version to go back to`, 'label');
      return this.move(tx, definition, input.label, current, 'ROLLBACK', target);
    });
    return this.moved(label);
  }

  /** After a move: the relay woken, and the definition's labels read afresh by the rest of the request. */
  private moved(label: Label): Label {
    this.outbox.notify();
    this.byDefinition.clear({ tenantId: label.tenantId, id: label.definitionId });
    return label;
  }

  private async move(tx: Transaction, definition: Definition, name: string, current: Label | undefined, action: LabelAction, version: number) {
    const movedById = this.principal.userId ?? null;
    const label = await store.saveLabel(tx, { tenantId: definition.tenantId, definitionId: definition.id, name, version, movedById });
    const fromVersion = current?.version ?? null;
    await store.recordMove(tx, { tenantId: definition.tenantId, definitionId: definition.id, label: name, action, fromVersion, toVersion: version, movedById });
    const moved = { definitionId: definition.id, definitionName: definition.name, kind: definition.kind, label: name, action, fromVersion, toVersion: version };
    await writeEvent(tx, LABEL_MOVED_TOPIC, labelMovedEvent(definition.tenantId, { ...moved, isolation: this.principal.isolation }));
    return label;
  }
}

async function lockedDefinition(tx: Transaction, id: string): Promise<Definition> {
  const definition = await definitions.lockDefinition(tx, id);
  if (!definition) throw notFound(`no definition ${id}`);
  return definition;
}
