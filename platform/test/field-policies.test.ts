/**
 * A field's @policy, read from the subgraph's SDL, checked where the field resolves: refused with the error
 * services' requirePermission raises, before a resolver (or a subscription) runs; the rule as Federation reads
 * it (outer list OR, inner lists AND), under whatever name the SDL's @link gives the directive.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { graphql, parse, subscribe, type ExecutionResult } from 'graphql';
import { ANONYMOUS, requirePermission, type Permission, type Principal } from '@jarvis/platform/contracts';
import { AppError } from '@jarvis/platform/errors';
import { fieldPolicies, withFieldPolicies } from '@jarvis/platform/subgraph';

const link = (imports: string) => `extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ${imports})`;

const SDL = `${link('["@key", "@policy"]')}
type Query {
  secret: String @policy(policies: [["kb:read"]])
  either: String @policy(policies: [["kb:read", "kb:write"], ["tenant:admin"]])
  open: String
}
type Subscription {
  ticks: Int @policy(policies: [["chat:use"]])
}
type Tenant @key(fields: "id") {
  id: ID!
  "No resolver of its own: the default one is guarded."
  name: String @policy(policies: [["members:read"]])
}`;

const callerHolding = (...permissions: string[]): Principal => ({ ...ANONYMOUS, tenantId: randomUUID(), permissions });

function serve(sdl: string, calls: string[] = []) {
  const resolvers = {
    Query: {
      secret: () => (calls.push('secret'), 'secret'),
      either: () => 'either',
      open: () => 'open',
    },
    Subscription: {
      ticks: {
        subscribe: async function* () {
          calls.push('subscribed');
          yield { ticks: 1 };
        },
      },
    },
    Tenant: { __resolveReference: (ref: { id: string }) => ({ ...ref, name: 'Acme' }) },
  };
  return buildSubgraphSchema([{ typeDefs: parse(sdl), resolvers: withFieldPolicies(sdl, resolvers) }]);
}

async function ask(source: string, principal: Principal, sdl = SDL): Promise<ExecutionResult> {
  return graphql({ schema: serve(sdl), source, contextValue: { principal } });
}

/** What requirePermission throws for this caller and permission: the error the guard must raise. */
function serviceError(principal: Principal, permission: Permission) {
  try {
    requirePermission(principal, permission);
  } catch (error) {
    return { message: (error as AppError).message, code: (error as AppError).code };
  }
  assert.fail(`requirePermission let the caller through for ${permission}`);
}

/** graphql-js answers with null-prototype objects. */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;
const errorsOf = (result: ExecutionResult) => (result.errors ?? []).map((e) => ({ path: e.path?.join('.'), message: e.message, code: e.extensions.code }));

describe('withFieldPolicies', () => {
  test("refuses a caller lacking the field's permission with requirePermission's error, before the resolver runs", async () => {
    const calls: string[] = [];
    const lacking = callerHolding('chat:use');
    const result = await graphql({ schema: serve(SDL, calls), source: '{ secret open }', contextValue: { principal: lacking } });
    assert.deepEqual(errorsOf(result), [{ path: 'secret', ...serviceError(lacking, 'kb:read') }]);
    assert.deepEqual(plain(result.data), { secret: null, open: 'open' });
    assert.deepEqual(calls, []);
  });

  test('refuses an anonymous caller as requirePermission does (UNAUTHENTICATED), and lets a holder through', async () => {
    assert.deepEqual(errorsOf(await ask('{ secret }', ANONYMOUS)), [{ path: 'secret', ...serviceError(ANONYMOUS, 'kb:read') }]);
    assert.deepEqual(plain(await ask('{ secret }', callerHolding('kb:read'))), { data: { secret: 'secret' } });
  });

  test('reads the rule as Federation does: any one of the inner lists, all of its permissions', async () => {
    const refused = (await ask('{ either }', callerHolding('kb:read'))).errors?.[0];
    assert.equal(refused?.extensions.code, 'FORBIDDEN');
    assert.equal(refused?.message, 'this needs the kb:read and kb:write or tenant:admin permission');
    for (const held of [['kb:read', 'kb:write'], ['tenant:admin']]) {
      assert.deepEqual(plain(await ask('{ either }', callerHolding(...held))), { data: { either: 'either' } }, held.join(', '));
    }
  });

  test("guards a field resolved by the default resolver, an entity's included", async () => {
    const query = `{ _entities(representations: [{ __typename: "Tenant", id: "t1" }]) { ... on Tenant { id name } } }`;
    const refused = await ask(query, callerHolding());
    assert.deepEqual(errorsOf(refused).map((e) => [e.path, e.code]), [['_entities.0.name', 'FORBIDDEN']]);
    assert.deepEqual(plain(await ask(query, callerHolding('members:read'))), { data: { _entities: [{ id: 't1', name: 'Acme' }] } });
  });

  test('refuses a subscription before it subscribes', async () => {
    const calls: string[] = [];
    const schema = serve(SDL, calls);
    const document = parse('subscription { ticks }');
    const refused = (await subscribe({ schema, document, contextValue: { principal: callerHolding('kb:read') } })) as ExecutionResult;
    assert.deepEqual(errorsOf(refused).map((e) => e.code), ['FORBIDDEN']);
    assert.deepEqual(calls, []);
    const events = (await subscribe({ schema, document, contextValue: { principal: callerHolding('chat:use') } })) as AsyncIterable<ExecutionResult>;
    for await (const event of events) {
      assert.deepEqual(plain(event), { data: { ticks: 1 } });
      break;
    }
    assert.deepEqual(calls, ['subscribed']);
  });
});

describe('fieldPolicies', () => {
  test("reads each field's rules by coordinate", () => {
    assert.deepEqual(Object.fromEntries(fieldPolicies(SDL)), {
      'Query.secret': [[['kb:read']]],
      'Query.either': [[['kb:read', 'kb:write'], ['tenant:admin']]],
      'Subscription.ticks': [[['chat:use']]],
      'Tenant.name': [[['members:read']]],
    });
  });

  test('knows @policy by the name the federation @link gives it: imported as another name, or namespaced', () => {
    const renamed = `${link('[{ name: "@policy", as: "@allowedBy" }]')}\ntype Query { a: String @allowedBy(policies: [["kb:read"]]) }`;
    const namespaced = `${link('["@key"]')}\ntype Query { a: String @federation__policy(policies: [["kb:read"]]) }`;
    for (const sdl of [renamed, namespaced]) assert.deepEqual(Object.fromEntries(fieldPolicies(sdl)), { 'Query.a': [[['kb:read']]] });
  });

  test('refuses, rather than ignores, a @policy it does not check: on a type', () => {
    const onType = `${link('["@key", "@policy"]')}\ntype Query { a: Secret }\ntype Secret @policy(policies: [["kb:read"]]) { b: String }`;
    assert.throws(() => fieldPolicies(onType), /Secret: @policy on a type is not checked by subgraphs/);
  });
});
