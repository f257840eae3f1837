/**
 * Workflow and agent definitions through the gateway: creating, versioning, publishing and rolling back as an
 * admin; what viewers and members may do (read and validate, never write); invalid YAML refused with its line,
 * column and path; and another tenant, which can neither see, resolve nor change any of it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PRINCIPAL_HEADER, PERMISSIONS, principalSigner } from '@jarvis/platform/contracts';
import { databaseVariants } from '@jarvis/platform/testing';
import { addMember, as, respond, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const workflow = (name: string, version = '1.0.0') => `document:
  dsl: '1.0.0'
  namespace: e2e
  name: ${name}
  version: '${version}'
input:
  schema:
    format: json
    document: { type: object, required: [question] }
do:
  - passages:
      call: jarvis.search
      with:
        query: \${ .question }
  - approval:
      listen:
        to:
          one:
            with:
              type: jarvis.approval
      timeout:
        after:
          hours: 1
`;
const agent = (workflowName: string) =>
  `instructions: Answer travel questions.\nstrategy: QUALITY\ntools:\n  workflows:\n    - name: ${workflowName}\nmaxSteps: 4\ntokenBudget: 5000\n`;

const CREATE = `mutation($input: CreateDefinitionInput!) {
  createDefinition(input: $input) { id name kind createdBy { name } latestVersion { number workflow { name calls listens inputSchema } agent { strategy maxSteps tools { workflows { name label } } } } }
}`;
const ADD_VERSION = `mutation($id: ID!, $source: String!) { addDefinitionVersion(input: { definitionId: $id, source: $source }) { number definition { name } } }`;
const PUBLISH = `mutation($id: ID!, $version: Int!) { publishDefinition(input: { definitionId: $id, version: $version }) { name version { number } previousVersion { number } } }`;
const ROLLBACK = `mutation($id: ID!) { rollbackDefinition(input: { definitionId: $id }) { name version { number } previousVersion { number } } }`;
const READ = `query($id: ID!) {
  definition(id: $id) {
    name kind
    versions { number }
    labels { name version { number } movedBy { name } history { action fromVersion toVersion } }
  }
}`;
const VALIDATE = `query($kind: DefinitionKind!, $source: String!) { validateDefinition(kind: $kind, source: $source) { valid problems { message path line column } } }`;

type Created = { createDefinition: { id: string } };
const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) => response.errors?.[0]?.extensions?.code;

for (const variant of databaseVariants()) {
  describe(`workflow and agent definitions through the gateway, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let admin: Member;
    let member: Member;
    let viewer: Member;
    let stranger: Member;
    let workflowId: string;

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true' });
      owner = await signUp(stack, 'agents');
      [admin, member, viewer] = await Promise.all(
        ['admin', 'member', 'viewer'].map((role) => addMember(stack, owner, `${role}@${owner.slug}.test`, role)),
      ) as [Member, Member, Member];
      stranger = await signUp(stack, 'agents-other');
    });
    after(() => stack?.close());

    test('an admin creates a workflow, adds a version, publishes and rolls back; the tenant reads each step', async () => {
      const { createDefinition } = await as<{ createDefinition: Record<string, unknown> & { id: string } }>(stack, admin, CREATE, {
        input: { name: 'travel-answer', kind: 'WORKFLOW', source: workflow('travel-answer') },
      });
      workflowId = createDefinition.id;
      assert.deepEqual(createDefinition, {
        id: workflowId,
        name: 'travel-answer',
        kind: 'WORKFLOW',
        createdBy: { name: 'admin' },
        latestVersion: {
          number: 1,
          workflow: { name: 'travel-answer', calls: ['jarvis.search'], listens: true, inputSchema: '{"type":"object","required":["question"]}' },
          agent: null,
        },
      });
      const added = await as<{ addDefinitionVersion: unknown }>(stack, owner, ADD_VERSION, { id: workflowId, source: workflow('travel-answer', '1.1.0') });
      assert.deepEqual(added.addDefinitionVersion, { number: 2, definition: { name: 'travel-answer' } });

      const publish = (version: number) => as<{ publishDefinition: unknown }>(stack, admin, PUBLISH, { id: workflowId, version });
      assert.deepEqual((await publish(1)).publishDefinition, { name: 'production', version: { number: 1 }, previousVersion: null });
      assert.deepEqual((await publish(2)).publishDefinition, { name: 'production', version: { number: 2 }, previousVersion: { number: 1 } });
      const rolledBack = await as<{ rollbackDefinition: unknown }>(stack, admin, ROLLBACK, { id: workflowId });
      assert.deepEqual(rolledBack.rollbackDefinition, { name: 'production', version: { number: 1 }, previousVersion: null });
      const nothingBefore = await respond(stack, admin, ROLLBACK, { id: workflowId });
      assert.equal(codeOf(nothingBefore), 'CONFLICT', JSON.stringify(nothingBefore));

      for (const reader of [viewer, member]) {
        const { definition } = await as<{ definition: unknown }>(stack, reader, READ, { id: workflowId });
        assert.deepEqual(definition, {
          name: 'travel-answer',
          kind: 'WORKFLOW',
          versions: [{ number: 2 }, { number: 1 }],
          labels: [{
            name: 'production',
            version: { number: 1 },
            movedBy: { name: 'admin' },
            history: [
              { action: 'ROLLBACK', fromVersion: 2, toVersion: 1 },
              { action: 'PUBLISH', fromVersion: 1, toVersion: 2 },
              { action: 'PUBLISH', fromVersion: null, toVersion: 1 },
            ],
          }],
        });
      }

      const { createDefinition: desk } = await as<{ createDefinition: { agent: unknown; latestVersion: { agent: unknown } } }>(stack, owner, CREATE, {
        input: { name: 'travel-desk', kind: 'AGENT', source: agent('travel-answer') },
      });
      assert.deepEqual(desk.latestVersion.agent, { strategy: 'QUALITY', maxSteps: 4, tools: { workflows: [{ name: 'travel-answer', label: 'production' }] } });
      const { tenant } = await as<{ tenant: { definitions: { name: string }[] } }>(stack, viewer, `{ tenant { definitions(kind: AGENT) { name } } }`);
      assert.deepEqual(tenant.definitions, [{ name: 'travel-desk' }]);
    });

    test('invalid YAML or an invalid definition is BAD_USER_INPUT with its line, column and path, and nothing is saved', async () => {
      const source = workflow('broken').replace('call: jarvis.search', 'call: jarvis.searsh');
      const refused = await respond<Created>(stack, admin, CREATE, { input: { name: 'broken', kind: 'WORKFLOW', source } });
      assert.equal(refused.data?.createDefinition, null);
      const { code, line, column, path, problems } = refused.errors![0]!.extensions as Record<string, unknown>;
      const problem = { message: "unknown function 'jarvis.searsh': call jarvis.search, jarvis.model, jarvis.agent, jarvis.mcp, http, or a function declared under use.functions", path: '/do/0/passages/call', line: 12, column: 13 };
      assert.deepEqual({ code, line, column, path, problems }, { code: 'BAD_USER_INPUT', line: 12, column: 13, path: '/do/0/passages/call', problems: [problem] });
      assert.equal(refused.errors![0]!.message, `source: line 12, column 13 (/do/0/passages/call): ${problem.message}`);

      const unreadable = await respond(stack, admin, CREATE, { input: { name: 'broken', kind: 'AGENT', source: 'instructions: [never closed\n' } });
      assert.deepEqual(pick(unreadable.errors![0]!.extensions!, ['code', 'line', 'column', 'path']), { code: 'BAD_USER_INPUT', line: 2, column: 1, path: '' });

      const { validateDefinition } = await as<{ validateDefinition: unknown }>(stack, viewer, VALIDATE, { kind: 'WORKFLOW', source });
      assert.deepEqual(validateDefinition, { valid: false, problems: [problem] });
      const { tenant } = await as<{ tenant: { definitions: { name: string }[] } }>(stack, owner, `{ tenant { definitions { name } } }`);
      assert.ok(!tenant.definitions.some((definition) => definition.name === 'broken'));
    });

    test('viewers and members read and validate; only admins and owners write', async () => {
      const writes: [string, Record<string, unknown>][] = [
        [CREATE, { input: { name: 'members-own', kind: 'WORKFLOW', source: workflow('members-own') } }],
        [ADD_VERSION, { id: workflowId, source: workflow('travel-answer', '2.0.0') }],
        [PUBLISH, { id: workflowId, version: 2 }],
        [ROLLBACK, { id: workflowId }],
      ];
      for (const [who, caller] of [['viewer', viewer], ['member', member]] as const) {
        for (const [query, variables] of writes) {
          const response = await respond(stack, caller, query, variables);
          assert.equal(codeOf(response), 'UNAUTHORIZED_FIELD_OR_TYPE', `${who}: ${JSON.stringify(response)}`);
        }
        const { validateDefinition } = await as<{ validateDefinition: { valid: boolean } }>(stack, caller, VALIDATE, { kind: 'AGENT', source: agent('travel-answer') });
        assert.equal(validateDefinition.valid, true, who);
      }
      const { definition } = await as<{ definition: { versions: unknown[] } }>(stack, owner, READ, { id: workflowId });
      assert.equal(definition.versions.length, 2, 'nothing was added');
      const taken = await respond(stack, owner, CREATE, { input: { name: 'travel-answer', kind: 'WORKFLOW', source: workflow('travel-answer') } });
      assert.equal(codeOf(taken), 'CONFLICT');
    });

    test('another tenant cannot see, resolve, name or change them, and may use the same names', async () => {
      assert.deepEqual((await as<{ definition: unknown }>(stack, stranger, READ, { id: workflowId })).definition, null);
      const { tenant } = await as<{ tenant: { definitions: unknown[] } }>(stack, stranger, `{ tenant { definitions { id } } }`);
      assert.deepEqual(tenant.definitions, []);
      for (const [query, variables] of [
        [ADD_VERSION, { id: workflowId, source: workflow('travel-answer', '9.0.0') }],
        [PUBLISH, { id: workflowId, version: 1 }],
        [ROLLBACK, { id: workflowId }],
      ] as const) {
        assert.equal(codeOf(await respond(stack, stranger, query, variables)), 'NOT_FOUND');
      }
      // The owner's workflow is no name the stranger's agents can refer to.
      const { validateDefinition } = await as<{ validateDefinition: { problems: { path: string; message: string }[] } }>(stack, stranger, VALIDATE, {
        kind: 'AGENT',
        source: agent('travel-answer'),
      });
      assert.deepEqual(validateDefinition.problems.map((p) => [p.path, p.message]), [['/tools/workflows/0/name', 'the tenant has no workflow named travel-answer']]);
      await as(stack, stranger, CREATE, { input: { name: 'travel-answer', kind: 'WORKFLOW', source: workflow('travel-answer') } });

      // Straight to the subgraph with the stranger's principal, holding every permission: the entity is not there.
      const principal = { tenantId: stranger.tenantId, userId: stranger.userId, roles: ['owner'], scopes: [], permissions: Object.keys(PERMISSIONS), isolation: 'SHARED' as const };
      const response = await fetch(stack.subgraphUrls.agents!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [PRINCIPAL_HEADER]: await principalSigner(stack.config.INTERNAL_AUTH_SECRET!).sign(principal) },
        body: JSON.stringify({
          query: `query($r: [_Any!]!) { _entities(representations: $r) { ... on Definition { id name versions { source } } } }`,
          variables: { r: [{ __typename: 'Definition', id: workflowId }] },
        }),
      });
      assert.deepEqual(await response.json(), { data: { _entities: [null] } });
    });
  });
}

const pick = (object: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.map((key) => [key, object[key]]));
