import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { buildSchema, parse, print, type ExecutionResult } from 'graphql';
import { ANONYMOUS, type Principal } from '@jarvis/platform/contracts';
import { completeResult, createAuthorizer, readAuthorization, type Analysis } from '../src/authorization/index.ts';

// A plain schema declaring the directives under their default names: no @link, so no supergraph is needed.
const SDL = `
  directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM
  directive @requiresScopes(scopes: [[String!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM
  directive @policy(policies: [[String!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM

  scalar Internal @authenticated
  enum Level @policy(policies: [["tenant:admin"]]) { LOW HIGH }

  type Query {
    ping: String
    me: User @authenticated
    topProducts: [Product]
    product: Product
    strictProduct: Product!
    itf: I
    node: Node
    uni: [U!]
  }
  type Mutation @authenticated { ping: String }
  interface I { id: ID other: String }
  type A implements I { id: ID other: String }
  type B implements I { id: ID @authenticated other: String }
  interface Node { id: ID! }
  type User implements Node @authenticated { id: ID! name: String }
  type Product implements Node {
    id: ID!
    name: String
    internal: Internal
    level: Level
    reviews: [[Review!]] @requiresScopes(scopes: [["review:read"]])
    price: Int! @requiresScopes(scopes: [["a", "b"], ["c"]])
    admin: String @policy(policies: [["tenant:admin"]]) @requiresScopes(scopes: [["c"]])
  }
  type Review { body: String }
  union U = A | User
`;

const schema = buildSchema(SDL);
const { rules } = readAuthorization(SDL);

const anonymous: Principal = ANONYMOUS;
const signedIn = (grants: { scopes?: string[]; permissions?: string[] } = {}): Principal => ({
  ...ANONYMOUS,
  tenantId: randomUUID(),
  userId: randomUUID(),
  scopes: grants.scopes ?? [],
  permissions: grants.permissions ?? [],
});

const hashOf = (query: string) => createHash('sha256').update(query).digest('hex');

function analyze(query: string, principal: Principal, options: { rejectUnauthorized?: boolean } = {}): Analysis {
  return createAuthorizer(schema, rules, options).analyze({ queryHash: hashOf(query), document: parse(query), principal });
}

/** The filtered operation, printed, and the unauthorized paths; "unchanged" or "rejected" otherwise. */
function filtered(query: string, principal: Principal) {
  const analysis = analyze(query, principal);
  if (analysis.kind !== 'filtered') return { kind: analysis.kind, unauthorized: 'unauthorized' in analysis ? analysis.unauthorized : [] };
  return { kind: analysis.kind, query: analysis.source, unauthorized: analysis.unauthorized };
}

const normalized = (query: string) => print(parse(query));

describe('reading the rules', () => {
  test('field and type requirements, under the default names', () => {
    assert.deepEqual(rules.fields.get('Query.me'), { authenticated: true, scopes: [], policies: [] });
    assert.deepEqual(rules.fields.get('Product.price')?.scopes, [[['a', 'b'], ['c']]]);
    assert.deepEqual(rules.fields.get('Product.admin'), { authenticated: false, scopes: [[['c']]], policies: [[['tenant:admin']]] });
    assert.equal(rules.types.get('User')?.authenticated, true);
    assert.equal(rules.types.get('Internal')?.authenticated, true);
    assert.deepEqual(rules.types.get('Level')?.policies, [[['tenant:admin']]]);
    assert.equal(rules.fields.get('Product.name'), undefined);
  });

  test('names given by @link (as: and renamed imports) are followed, and `for: SECURITY` is cut', () => {
    const supergraph = `
      schema
        @link(url: "https://specs.apollo.dev/link/v1.0")
        @link(url: "https://specs.apollo.dev/authenticated/v0.1", as: "signedIn", for: SECURITY)
        @link(url: "https://specs.apollo.dev/requiresScopes/v0.1", import: [{ name: "@requiresScopes", as: "@scoped" }], for: SECURITY)
        @link(url: "https://specs.apollo.dev/policy/v0.1", for: SECURITY)
      { query: Query }
      directive @signedIn on FIELD_DEFINITION
      directive @scoped(scopes: [[String!]!]!) on FIELD_DEFINITION
      directive @policy(policies: [[String!]!]!) on FIELD_DEFINITION
      directive @authenticated on FIELD_DEFINITION
      type Query {
        a: String @signedIn
        b: String @scoped(scopes: [["x"]])
        c: String @policy(policies: [["p"]])
        d: String @authenticated
      }
    `;
    const { rules: renamed, gatewaySdl } = readAuthorization(supergraph);
    assert.equal(renamed.fields.get('Query.a')?.authenticated, true);
    assert.deepEqual(renamed.fields.get('Query.b')?.scopes, [[['x']]]);
    assert.deepEqual(renamed.fields.get('Query.c')?.policies, [[['p']]]);
    assert.equal(renamed.fields.get('Query.d'), undefined, 'a directive that is not the linked one means nothing');
    assert.doesNotMatch(gatewaySdl, /SECURITY/);
    assert.match(gatewaySdl, /@link\(url: "https:\/\/specs.apollo.dev\/authenticated\/v0.1", as: "signedIn", \)/);
    assert.equal(supergraph.replace(/for: SECURITY/g, ''), gatewaySdl, 'nothing else changes');
  });
});

describe('filtering an operation', () => {
  test('an unauthenticated caller loses @authenticated fields; the rest stays', () => {
    assert.deepEqual(filtered('{ ping me { name } }', anonymous), { kind: 'filtered', query: normalized('{ ping }'), unauthorized: [['me']] });
    assert.equal(filtered('{ ping me { name } }', signedIn()).kind, 'unchanged');
  });

  test('type requirements apply to fields returning the type: objects, scalars and enums', () => {
    const result = filtered('{ topProducts { name internal level } }', anonymous);
    assert.equal(result.query, normalized('{ topProducts { name } }'));
    assert.deepEqual(result.unauthorized, [['topProducts', '@', 'internal'], ['topProducts', '@', 'level']]);
    assert.deepEqual(filtered('{ topProducts { name level } }', signedIn({ permissions: ['tenant:admin'] })).kind, 'unchanged');
  });

  test('scopes: any inner list, all of its scopes', () => {
    const query = '{ product { name price } }';
    assert.equal(filtered(query, signedIn({ scopes: ['a', 'b'] })).kind, 'unchanged');
    assert.equal(filtered(query, signedIn({ scopes: ['c'] })).kind, 'unchanged');
    assert.deepEqual(filtered(query, signedIn({ scopes: ['a'] })).unauthorized, [['product', 'price']]);
    assert.deepEqual(filtered(query, signedIn({ scopes: ['b', 'x'] })).unauthorized, [['product', 'price']]);
  });

  test('a field with several directives needs all of them', () => {
    const query = '{ product { name admin } }';
    assert.equal(filtered(query, signedIn({ scopes: ['c'], permissions: ['tenant:admin'] })).kind, 'unchanged');
    assert.deepEqual(filtered(query, signedIn({ scopes: ['c'] })).unauthorized, [['product', 'admin']]);
    assert.deepEqual(filtered(query, signedIn({ permissions: ['tenant:admin'] })).unauthorized, [['product', 'admin']]);
  });

  test('paths use response keys, with "@" for each list level', () => {
    const result = filtered('{ items: topProducts { label: name r: reviews { body } } }', signedIn());
    assert.equal(result.query, normalized('{ items: topProducts { label: name } }'));
    assert.deepEqual(result.unauthorized, [['items', '@', 'r', '@', '@']]);
  });

  test('a selection emptied by removals goes too, and with nothing left the operation is rejected', () => {
    assert.deepEqual(filtered('{ ping product { price } }', anonymous), {
      kind: 'filtered',
      query: normalized('{ ping }'),
      unauthorized: [['product', 'price']],
    });
    assert.deepEqual(filtered('{ product { price } me { id } }', anonymous), {
      kind: 'rejected',
      unauthorized: [['product', 'price'], ['me']],
    });
  });

  test('a requirement on a root type covers the whole operation', () => {
    assert.deepEqual(filtered('mutation { ping }', anonymous), { kind: 'rejected', unauthorized: [[]] });
    assert.equal(filtered('mutation { ping }', signedIn()).kind, 'unchanged');
  });

  test('reject mode refuses the operation when anything is unauthorized', () => {
    const analysis = analyze('{ ping me { name } }', anonymous, { rejectUnauthorized: true });
    assert.deepEqual(analysis, { kind: 'rejected', unauthorized: [['me']] });
    assert.equal(analyze('{ ping }', anonymous, { rejectUnauthorized: true }).kind, 'unchanged');
  });

  test('named fragments are filtered once, reported at each spread, and unused variables go', () => {
    const query = `
      query Q($withPrice: Boolean!) { product { ...P } topProducts { ...P } }
      fragment P on Product { name price @include(if: $withPrice) }
    `;
    const result = filtered(query, anonymous);
    assert.equal(result.query, normalized('query Q { product { ...P } topProducts { ...P } } fragment P on Product { name }'));
    assert.deepEqual(result.unauthorized, [['product', 'price'], ['topProducts', '@', 'price']]);
  });

  test('inline fragments with a type condition appear in paths as "... on T"', () => {
    const result = filtered('{ product { ... on Product { name price } ... { id } } }', anonymous);
    assert.equal(result.query, normalized('{ product { ... on Product { name } ... { id } } }'));
    assert.deepEqual(result.unauthorized, [['product', '... on Product', 'price']]);
  });

  test('an interface field is unauthorized when it is on any implementation', () => {
    assert.deepEqual(filtered('{ itf { id other } }', anonymous), {
      kind: 'filtered',
      query: normalized('{ itf { other } }'),
      unauthorized: [['itf', 'id']],
    });
    const throughFragments = filtered('{ itf { ... on A { id } ... on B { id other } } }', anonymous);
    assert.equal(throughFragments.query, normalized('{ itf { ... on A { id } ... on B { other } __authzTypename: __typename } }'));
    assert.deepEqual(throughFragments.unauthorized, [['itf', '... on B', 'id']]);
  });

  test('an abstract field is unauthorized when it reads fields from a possible type the caller may not see', () => {
    assert.deepEqual(filtered('{ ping node { id } }', anonymous).unauthorized, [['node']]);
    assert.deepEqual(filtered('{ ping node { ... { id } } }', anonymous).unauthorized, [['node']], 'fragments are looked through');
    assert.deepEqual(filtered('{ ping node { ... on Node { id } } }', anonymous).unauthorized, [['node']]);
    assert.equal(filtered('{ node { __typename } }', anonymous).kind, 'unchanged', '__typename is always allowed');
    assert.equal(filtered('{ node { ... on Product { id } } }', anonymous).kind, 'unchanged');
    assert.deepEqual(filtered('{ ping node { ... on User { name } } }', anonymous), {
      kind: 'filtered',
      query: normalized('{ ping }'),
      unauthorized: [['node', '... on User']],
    });
  });

  test('a fragment on a union member the caller may not see is removed', () => {
    const result = filtered('{ uni { ... on A { id } ... on User { name } } }', anonymous);
    assert.equal(result.query, normalized('{ uni { ... on A { id } __authzTypename: __typename } }'));
    assert.deepEqual(result.unauthorized, [['uni', '@', '... on User']]);
  });

  test('introspection is never restricted', () => {
    const result = filtered('{ __typename __schema { queryType { name } } me { name } }', anonymous);
    assert.equal(result.query, normalized('{ __typename __schema { queryType { name } } }'));
  });

  test('analyses are cached per document and kind of caller', () => {
    const authorizer = createAuthorizer(schema, rules);
    const query = '{ ping product { price } }';
    const ask = (principal: Principal) => authorizer.analyze({ queryHash: hashOf(query), document: parse(query), principal });
    const first = ask(signedIn({ scopes: ['c', 'unrelated'] }));
    assert.equal(first.kind, 'unchanged');
    assert.equal(ask(signedIn({ scopes: ['c'] })), first, 'scopes no rule names do not matter');
    const other = ask(signedIn({ scopes: ['a'] }));
    assert.equal(other.kind, 'filtered');
    assert.equal(ask(signedIn({ scopes: ['a'] })), other, 'the same kind of caller gets the cached analysis');
    assert.equal(ask(signedIn({ scopes: ['c'] })).kind, 'unchanged', 'and the other kind is not served it');
  });
});

describe('completing the result', () => {
  function complete(query: string, principal: Principal, data: Record<string, unknown>): ExecutionResult {
    const analysis = analyze(query, principal);
    assert.equal(analysis.kind, 'filtered');
    return completeResult({ data }, analysis as Extract<Analysis, { kind: 'filtered' }>);
  }
  const paths = (result: ExecutionResult) => result.errors?.map((error) => error.path);
  const codes = (result: ExecutionResult) => result.errors?.map((error) => error.extensions.code);

  test('null at every removed field, in every list item, under its alias, with an error per field', () => {
    const result = complete('{ items: topProducts { label: name r: reviews { body } internal } }', anonymous, {
      items: [{ label: 'Table' }, null, { label: 'Chair' }],
    });
    assert.deepEqual(result.data, {
      items: [{ label: 'Table', r: null, internal: null }, null, { label: 'Chair', r: null, internal: null }],
    });
    assert.deepEqual(paths(result), [['items', '@', 'r', '@', '@'], ['items', '@', 'internal']]);
    assert.deepEqual(codes(result), ['UNAUTHORIZED_FIELD_OR_TYPE', 'UNAUTHORIZED_FIELD_OR_TYPE']);
    assert.equal(result.errors?.[0]?.message, 'Unauthorized field or type');
  });

  test('a removed non-null field nulls its nearest nullable parent', () => {
    const result = complete('{ ping product { name price } }', signedIn(), { ping: 'pong', product: { name: 'Table' } });
    assert.deepEqual(result.data, { ping: 'pong', product: null });
    assert.deepEqual(paths(result), [['product', 'price']]);
  });

  test('up to data itself when every parent is non-null', () => {
    const result = complete('{ ping strictProduct { name price } }', signedIn(), { ping: 'pong', strictProduct: { name: 'Table' } });
    assert.equal(result.data, null);
    assert.deepEqual(paths(result), [['strictProduct', 'price']]);
  });

  test('fields of a removed fragment read null only on objects of its type, and the injected __typename goes', () => {
    const result = complete('{ ping uni { ... on A { id } ... on User { name } } }', anonymous, {
      ping: 'pong',
      uni: [
        { id: '1', __authzTypename: 'A' },
        { __authzTypename: 'User' },
      ],
    });
    assert.deepEqual(result.data, { ping: 'pong', uni: [{ id: '1' }, { name: null }] });
    assert.deepEqual(paths(result), [['uni', '@', '... on User']]);
  });

  test('errors from execution are kept, ours come after them', () => {
    const analysis = analyze('{ ping me { name } }', anonymous) as Extract<Analysis, { kind: 'filtered' }>;
    const upstream = completeResult({ data: { ping: null }, errors: [] }, analysis);
    assert.deepEqual(upstream.data, { ping: null, me: null });
    assert.deepEqual(paths(upstream), [['me']]);
  });
});
