/**
 * Definitions, versions and labels through their services, on each database: names unique per tenant, versions
 * immutable and numbered in order, nothing saved from invalid YAML, references to the tenant's other
 * definitions, publishing and rolling back, events through the outbox, other tenants and DEDICATED schemas.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { BUILT_IN_ROLES, type Principal, type TenantIsolation } from '@jarvis/platform/contracts';
import { dedicatedSchemaName, scopeToPrincipal, type Database } from '@jarvis/platform/db';
import { AppError } from '@jarvis/platform/errors';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';
import { DefinitionService } from '../src/definitions/service.ts';
import { LabelService, rollbackTarget } from '../src/labels/service.ts';

const TRIAGE = readFileSync(new URL('fixtures/ticket-triage.yaml', import.meta.url), 'utf8');
const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));

const workflow = (name: string, version = '1.0.0') =>
  `document:\n  dsl: '1.0.0'\n  namespace: test\n  name: ${name}\n  version: '${version}'\ndo:\n  - mark:\n      set:\n        done: true\n`;
const agent = (workflows: string[]) =>
  `instructions: Help.\nstrategy: COST\nmaxSteps: 3\ntokenBudget: 1000\ntools:\n  workflows:${workflows.map((name) => `\n    - name: ${name}`).join('') || ' []'}\n`;

/** An AppError's code and extensions, or the error itself when it is something else. */
async function refusal(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppError) return { code: error.code, message: error.message, extensions: error.extensions };
    throw error;
  }
  assert.fail('expected a refusal');
}

for (const variant of databaseVariants()) {
  describe(`definitions and labels on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database & { close(): Promise<void> };
    before(async () => {
      db = await openTestDatabase(variant, 'agents');
      await db.migrate(MIGRATIONS);
    });
    after(() => db?.close());

    const notified: number[] = [];
    function services(tenantId: string, { role = 'admin', isolation = 'SHARED' as TenantIsolation, permissions = [...BUILT_IN_ROLES[role]!] as string[] } = {}) {
      const principal: Principal = { tenantId, userId: randomUUID(), roles: [role], scopes: [], permissions, isolation };
      const scoped = scopeToPrincipal(db, principal);
      const definitions = new DefinitionService(scoped, principal);
      const labels = new LabelService(scoped, principal, { notify: () => notified.push(Date.now()) }, definitions);
      return { principal, definitions, labels };
    }

    test('a definition starts with version 1, declaring what its document does; more versions follow in order', async () => {
      const { principal, definitions } = services(randomUUID());
      // ticket-triage has the support-agent agent take a step, so that agent comes first.
      await definitions.create({ name: 'support-agent', kind: 'AGENT', source: agent([]) });
      const created = await definitions.create({ name: 'ticket-triage', kind: 'WORKFLOW', source: TRIAGE });
      assert.equal(created.createdById, principal.userId);
      const first = await definitions.latestVersion(created);
      assert.equal(first.number, 1);
      assert.equal(first.source, TRIAGE);
      assert.deepEqual('workflow' in first.declared && first.declared.workflow.calls, ['jarvis.model', 'http', 'jarvis.agent', 'jarvis.mcp', 'jarvis.search']);
      const second = await definitions.addVersion({ definitionId: created.id, source: TRIAGE.replace("version: '1.0.0'", "version: '1.1.0'") });
      const third = await definitions.addVersion({ definitionId: created.id, source: TRIAGE });
      assert.deepEqual([second.number, third.number], [2, 3]);
      assert.deepEqual((await definitions.versionsOf(created, 20)).map((v) => v.number), [3, 2, 1]);
      assert.equal((await definitions.version(created.tenantId, created.id, 2))?.source.includes("'1.1.0'"), true);
      assert.equal(await definitions.version(created.tenantId, created.id, 4), null);
    });

    test("versions asked for at once (one batch) are each the one asked for; numbers it does not have are null", async () => {
      const { definitions } = services(randomUUID());
      const [a, b] = [await definitions.create({ name: 'a', kind: 'WORKFLOW', source: workflow('a') }), await definitions.create({ name: 'b', kind: 'WORKFLOW', source: workflow('b') })];
      await definitions.addVersion({ definitionId: b.id, source: workflow('b', '2.0.0') });
      const asked = [[a, 1], [b, 2], [b, 1], [a, 2], [b, -1], [b, 4_000_000_000]] as const;
      const loaded = await Promise.all(asked.map(([definition, number]) => definitions.version(definition.tenantId, definition.id, number)));
      assert.deepEqual(
        loaded.map((version) => version && `${version.definitionId}/${version.number}`),
        [`${a.id}/1`, `${b.id}/2`, `${b.id}/1`, null, null, null],
      );
      assert.ok(loaded[1]!.source.includes("'2.0.0'"));
    });

    test('names are unique in a tenant (CONFLICT), and another tenant may use the same one', async () => {
      const tenant = services(randomUUID());
      await tenant.definitions.create({ name: 'onboarding', kind: 'WORKFLOW', source: workflow('onboarding') });
      const again = await refusal(tenant.definitions.create({ name: 'onboarding', kind: 'AGENT', source: agent([]) }));
      assert.deepEqual([again.code, again.extensions.field], ['CONFLICT', 'name']);
      await services(randomUUID()).definitions.create({ name: 'onboarding', kind: 'WORKFLOW', source: workflow('onboarding') });
      for (const name of ['', 'Onboarding', '-lead', 'a b', 'x'.repeat(65)]) {
        assert.equal((await refusal(tenant.definitions.create({ name, kind: 'WORKFLOW', source: workflow('x') }))).code, 'BAD_USER_INPUT', name);
      }
    });

    test('invalid YAML or an invalid definition is BAD_USER_INPUT at its line, column and path, and nothing is saved', async () => {
      const { definitions, principal } = services(randomUUID());
      const broken = await refusal(definitions.create({ name: 'broken', kind: 'WORKFLOW', source: "document:\n  dsl: '1.0.0'\n  name: [x\n" }));
      assert.equal(broken.code, 'BAD_USER_INPUT');
      assert.deepEqual([broken.extensions.line, broken.extensions.column, broken.extensions.path], [4, 1, '']);
      const invalid = await refusal(definitions.create({ name: 'invalid', kind: 'WORKFLOW', source: workflow('invalid').replace('set:', 'sett:') }));
      assert.match(invalid.message, /^source: line 7, column 5 \(\/do\/0\/mark\): not a task/);
      assert.deepEqual([invalid.extensions.line, invalid.extensions.column, invalid.extensions.path, invalid.extensions.field], [7, 5, '/do/0/mark', 'source']);
      assert.equal((invalid.extensions.problems as unknown[]).length, 1);
      assert.deepEqual(await definitions.definitionsOf(principal.tenantId!, null, 50), []);

      const kept = await definitions.create({ name: 'kept', kind: 'AGENT', source: agent([]) });
      const refused = await refusal(definitions.addVersion({ definitionId: kept.id, source: agent([]).replace('maxSteps: 3', 'maxSteps: many') }));
      assert.deepEqual([refused.code, refused.extensions.path, refused.extensions.line], ['BAD_USER_INPUT', '/maxSteps', 3]);
      assert.deepEqual((await definitions.versionsOf(kept, 20)).map((v) => v.number), [1]);
    });

    test("a document naming the tenant's other definitions needs them, of the right kind", async () => {
      const { definitions, principal } = services(randomUUID());
      const missing = await refusal(definitions.create({ name: 'desk', kind: 'AGENT', source: agent(['triage']) }));
      assert.deepEqual([missing.code, missing.extensions.path, missing.extensions.line, missing.extensions.column], ['BAD_USER_INPUT', '/tools/workflows/0/name', 7, 13]);
      assert.match(missing.message, /the tenant has no workflow named triage/);
      assert.deepEqual((await definitions.validate('AGENT', agent(['triage']))).problems.map((p) => p.path), ['/tools/workflows/0/name']);

      await definitions.create({ name: 'triage', kind: 'WORKFLOW', source: workflow('triage') });
      await definitions.create({ name: 'desk', kind: 'AGENT', source: agent(['triage']) });
      assert.deepEqual(await definitions.validate('AGENT', agent(['triage'])), { valid: true, problems: [] });
      // An agent is not a workflow.
      assert.equal((await refusal(definitions.create({ name: 'desk-2', kind: 'AGENT', source: agent(['desk']) }))).code, 'BAD_USER_INPUT');
      await definitions.create({ name: 'support-agent', kind: 'AGENT', source: agent(['triage']) });
      await definitions.create({ name: 'ticket-triage', kind: 'WORKFLOW', source: TRIAGE });
      assert.deepEqual((await definitions.definitionsOf(principal.tenantId!, 'AGENT', 50)).map((d) => d.name), ['support-agent', 'desk']);
    });

    test('publishing moves a label; rolling back undoes the publishes one by one, then is a CONFLICT', async () => {
      const { definitions, labels, principal } = services(randomUUID());
      const definition = await definitions.create({ name: 'release', kind: 'WORKFLOW', source: workflow('release', '1.0.0') });
      for (const version of ['2.0.0', '3.0.0']) await definitions.addVersion({ definitionId: definition.id, source: workflow('release', version) });
      const publish = (version: number, label?: string) => labels.publish({ definitionId: definition.id, version, label: label ?? 'production' });
      const rollback = (label = 'production') => labels.rollback({ definitionId: definition.id, label });
      const before = notified.length;

      assert.equal((await publish(1)).version, 1);
      assert.equal((await publish(2)).version, 2);
      assert.equal((await publish(3)).version, 3);
      assert.equal((await publish(3)).version, 3, 'the version it points at already: no move');
      await publish(1, 'staging');
      const production = (await labels.label(definition, 'production'))!;
      assert.equal((await labels.previousVersion(production))?.number, 2);
      assert.equal((await rollback()).version, 2);
      assert.equal((await rollback()).version, 1);
      const first = await refusal(rollback());
      assert.deepEqual([first.code, first.extensions.field], ['CONFLICT', 'label']);
      assert.equal((await publish(3)).version, 3);
      assert.equal((await rollback()).version, 1, 'back to where the last publish moved it from');

      const moved = (await labels.label(definition, 'production'))!;
      assert.equal(moved.movedById, principal.userId);
      assert.deepEqual(
        (await labels.history(moved, 20)).map((m) => [m.action, m.fromVersion, m.toVersion]),
        [['ROLLBACK', 3, 1], ['PUBLISH', 1, 3], ['ROLLBACK', 2, 1], ['ROLLBACK', 3, 2], ['PUBLISH', 2, 3], ['PUBLISH', 1, 2], ['PUBLISH', null, 1]],
      );
      assert.deepEqual((await labels.labelsOf(definition)).map((l) => [l.name, l.version]), [['production', 1], ['staging', 1]]);
      assert.equal(notified.length - before, 9, 'the outbox is woken after each call');
      const events = await db.withSystem((tx) =>
        tx.query<{ event: { payload: { label: string; action: string; toVersion: number } } }>(
          `SELECT event FROM outbox WHERE topic = 'agents.label.moved' AND tenant_id = $1 ORDER BY created_at`,
          [principal.tenantId],
        ),
      );
      assert.deepEqual(events.map(({ event }) => `${event.payload.label} ${event.payload.action} ${event.payload.toVersion}`), [
        'production PUBLISH 1', 'production PUBLISH 2', 'production PUBLISH 3', 'staging PUBLISH 1',
        'production ROLLBACK 2', 'production ROLLBACK 1', 'production PUBLISH 3', 'production ROLLBACK 1',
      ]);

      assert.deepEqual((await refusal(publish(7))).extensions.field, 'version');
      assert.equal((await refusal(rollback('canary'))).code, 'NOT_FOUND');
      assert.equal((await refusal(publish(1, 'Not A Label'))).code, 'BAD_USER_INPUT');
    });

    test('where a rollback goes, from the moves alone', () => {
      const move = (action: 'PUBLISH' | 'ROLLBACK', fromVersion: number | null) => ({ action, fromVersion });
      assert.equal(rollbackTarget([]), null);
      assert.equal(rollbackTarget([move('PUBLISH', null)]), null);
      assert.equal(rollbackTarget([move('PUBLISH', 4), move('PUBLISH', null)]), 4);
      assert.equal(rollbackTarget([move('ROLLBACK', 5), move('PUBLISH', 4), move('PUBLISH', 2), move('PUBLISH', null)]), 2);
      assert.equal(rollbackTarget([move('ROLLBACK', 2), move('ROLLBACK', 5), move('PUBLISH', 4), move('PUBLISH', 2)]), null);
    });

    test('versions and label history never change, whoever asks', async () => {
      const { definitions, labels, principal } = services(randomUUID());
      const definition = await definitions.create({ name: 'frozen', kind: 'WORKFLOW', source: workflow('frozen') });
      await labels.publish({ definitionId: definition.id, version: 1, label: 'production' });
      for (const statement of [`UPDATE definition_versions SET source = 'changed'`, `UPDATE definition_label_moves SET to_version = 1`]) {
        await assert.rejects(db.withTenant(principal.tenantId!, (tx) => tx.query(statement)), /immutable/, statement);
        await assert.rejects(db.withSystem((tx) => tx.query(statement)), /immutable/, `${statement}, as the owner`);
      }
      assert.equal((await definitions.latestVersion(definition)).source, workflow('frozen'));
    });

    test('writing needs agents:write and reading agents:read; another tenant finds nothing of them', async () => {
      const owner = services(randomUUID());
      const definition = await owner.definitions.create({ name: 'private', kind: 'WORKFLOW', source: workflow('private') });
      const member = services(owner.principal.tenantId!, { role: 'member' });
      assert.equal((await member.definitions.definition(definition.id))?.name, 'private');
      assert.equal((await refusal(member.definitions.create({ name: 'mine', kind: 'WORKFLOW', source: workflow('mine') }))).code, 'FORBIDDEN');
      assert.equal((await refusal(member.labels.publish({ definitionId: definition.id, version: 1, label: 'production' }))).code, 'FORBIDDEN');
      const nobody = services(owner.principal.tenantId!, { permissions: [] });
      assert.equal((await refusal(nobody.definitions.definition(definition.id))).code, 'FORBIDDEN');

      const other = services(randomUUID());
      assert.equal(await other.definitions.definition(definition.id), null);
      assert.equal((await refusal(other.definitions.addVersion({ definitionId: definition.id, source: workflow('private') }))).code, 'NOT_FOUND');
      assert.equal((await refusal(other.labels.publish({ definitionId: definition.id, version: 1, label: 'production' }))).code, 'NOT_FOUND');
      assert.equal((await refusal(other.labels.rollback({ definitionId: definition.id, label: 'production' }))).code, 'NOT_FOUND');
      assert.equal((await refusal(other.definitions.definitionsOf(owner.principal.tenantId!, null, 50))).code, 'FORBIDDEN');
    });

    test("a DEDICATED tenant's definitions live in its own schema", async () => {
      const tenantId = randomUUID();
      const { definitions, labels } = services(tenantId, { isolation: 'DEDICATED' });
      const definition = await definitions.create({ name: 'apart', kind: 'WORKFLOW', source: workflow('apart') });
      await labels.publish({ definitionId: definition.id, version: 1, label: 'production' });
      const count = (schema: string, table: string) =>
        db.withSystem(async (tx) => Number((await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.${table} WHERE tenant_id = $1`, [tenantId]))[0]!.n));
      const own = dedicatedSchemaName(db.schema, tenantId);
      for (const table of ['definitions', 'definition_versions', 'definition_labels', 'definition_label_moves']) {
        assert.deepEqual([await count(own, table), await count(db.schema, table)], [1, 0], table);
      }
      assert.deepEqual((await definitions.definitionsOf(tenantId, null, 50)).map((d) => d.name), ['apart']);
    });
  });
}
