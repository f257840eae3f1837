/**
 * A field's policy holds however the field is selected. For every field of the supergraph carrying @policy,
 * @requiresScopes or @authenticated, and every field carrying @rateLimit, the field is asked for plainly,
 * under an alias, inside an inline fragment and inside a named fragment, over HTTP and over WebSocket: each
 * way is authorized — and limited — the same.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  buildSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  parse,
  type GraphQLArgument,
  type GraphQLInputType,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { postGraphQL } from '@jarvis/platform/client';
import { SUPERGRAPH_PATH } from '@jarvis/platform/schema';
import { databaseVariants, redisVariants } from '@jarvis/platform/testing';
import { serviceKey, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const API_SCHEMA = buildSchema(readFileSync(new URL('../schema/api.graphql', import.meta.url), 'utf8'));
const SUPERGRAPH = parse(readFileSync(SUPERGRAPH_PATH, 'utf8'));

type Form = 'field' | 'alias' | 'inline fragment' | 'named fragment';
const FORMS: Form[] = ['field', 'alias', 'inline fragment', 'named fragment'];

interface Restricted {
  coordinate: string;
  /** Who the directives keep out: anyone not signed in, or a signed-in caller lacking a permission or scope. */
  deniedTo: 'anonymous' | 'no permission';
}

/** Every field the supergraph restricts, read from the directives on it (its type's restrictions included). */
function restrictedFields(): Restricted[] {
  const found: Restricted[] = [];
  for (const definition of SUPERGRAPH.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    const onType = (definition.directives ?? []).map((d) => d.name.value);
    for (const field of definition.fields ?? []) {
      const names = [...onType, ...(field.directives ?? []).map((d) => d.name.value)];
      const coordinate = `${definition.name.value}.${field.name.value}`;
      // Not in the API schema (internal, for server-to-server calls): the gateway never serves it.
      if (names.includes('inaccessible')) continue;
      if (names.includes('policy') || names.includes('requiresScopes')) found.push({ coordinate, deniedTo: 'no permission' });
      else if (names.includes('authenticated')) found.push({ coordinate, deniedTo: 'anonymous' });
    }
  }
  return found;
}

/** Every field carrying @rateLimit, with its limit. */
function rateLimitedFields(): { coordinate: string; max: number; by: string }[] {
  const found = [];
  for (const definition of SUPERGRAPH.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    for (const field of definition.fields ?? []) {
      const directive = field.directives?.find((d) => d.name.value === 'rateLimit');
      if (!directive) continue;
      const arg = (name: string) => directive.arguments?.find((a) => a.name.value === name)?.value;
      const max = arg('max');
      const by = arg('by');
      found.push({
        coordinate: `${definition.name.value}.${field.name.value}`,
        max: max?.kind === Kind.INT ? Number(max.value) : NaN,
        by: by?.kind === Kind.ENUM ? by.value : 'PRINCIPAL',
      });
    }
  }
  return found;
}

/** A literal of the type, enough to pass validation: these fields are refused before anything reads it. */
function literal(type: GraphQLInputType): string {
  if (isNonNullType(type)) return literal(type.ofType);
  if (isListType(type)) return '[]';
  if (isInputObjectType(type)) {
    const required = Object.values(type.getFields()).filter((f) => isNonNullType(f.type) && f.defaultValue === undefined);
    return `{ ${required.map((f) => `${f.name}: ${literal(f.type)}`).join(', ')} }`;
  }
  if (isEnumType(type)) return type.getValues()[0]!.name;
  const scalars: Record<string, string> = { Int: '1', Float: '1', Boolean: 'false', DateTime: '"2026-01-01T00:00:00Z"' };
  return scalars[type.name] ?? '"00000000-0000-4000-8000-000000000000"';
}

function argumentsOf(args: readonly GraphQLArgument[]): string {
  const required = args.filter((a) => isNonNullType(a.type) && a.defaultValue === undefined);
  return required.length ? `(${required.map((a) => `${a.name}: ${literal(a.type)}`).join(', ')})` : '';
}

/** The path of fields from the root to objects of `type`: none for a root type, else the shortest from Query. */
function pathTo(schema: GraphQLSchema, type: GraphQLObjectType): string[] {
  const root = schema.getQueryType()!;
  if ([root, schema.getMutationType(), schema.getSubscriptionType()].includes(type)) return [];
  const queue: { type: GraphQLObjectType; path: string[] }[] = [{ type: root, path: [] }];
  const seen = new Set([root.name]);
  while (queue.length) {
    const { type: at, path } = queue.shift()!;
    for (const field of Object.values(at.getFields())) {
      const next = getNamedType(field.type);
      if (!isObjectType(next) || seen.has(next.name) || field.args.some((a) => isNonNullType(a.type))) continue;
      if (next === type) return [...path, field.name];
      seen.add(next.name);
      queue.push({ type: next, path: [...path, field.name] });
    }
  }
  throw new Error(`no path from Query to ${type.name}`);
}

/** The operation asking for `Type.field` in one form, and the response key it answers under. */
function operationFor(coordinate: string, form: Form): { query: string; key: string } {
  const [typeName, fieldName] = coordinate.split('.') as [string, string];
  const type = API_SCHEMA.getType(typeName) as GraphQLObjectType;
  const field = type.getFields()[fieldName]!;
  const key = form === 'alias' ? 'aliased' : fieldName;
  const selection = `${form === 'alias' ? 'aliased: ' : ''}${fieldName}${argumentsOf(field.args)}${isObjectType(getNamedType(field.type)) ? ' { __typename }' : ''}`;
  const wrapped = form === 'inline fragment' ? `... on ${typeName} { ${selection} }` : form === 'named fragment' ? '...Selected' : selection;
  const path = pathTo(API_SCHEMA, type);
  const body = path.reduceRight((inner, outer) => `${outer} { ${inner} }`, wrapped);
  const keyword = typeName === 'Mutation' ? 'mutation' : typeName === 'Subscription' ? 'subscription' : 'query';
  const fragment = form === 'named fragment' ? ` fragment Selected on ${typeName} { ${selection} }` : '';
  return { query: `${keyword} { ${body} }${fragment}`, key };
}

type Answer = { data?: unknown; errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[] };

function overWebSocket(client: Client, query: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let first: Answer | undefined;
    const stop = client.subscribe(
      { query },
      {
        next: (result) => {
          first ??= result as Answer;
          stop();
          resolve(first);
        },
        error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
        complete: () => resolve(first ?? {}),
      },
    );
  });
}

function connect(stack: TestStack, authorization?: string): Client {
  return createClient({ url: stack.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: authorization ? { authorization } : {} });
}

const codesAt = (answer: Answer, key: string) =>
  (answer.errors ?? []).filter((e) => e.path?.at(-1) === key || e.path?.at(-1) === '@' && e.path.at(-2) === key).map((e) => e.extensions?.code);

const [database] = databaseVariants();

describe('every restricted field, however selected', () => {
  let stack: TestStack;
  const headers: Record<Restricted['deniedTo'] | 'owner', Record<string, string>> = { anonymous: {}, 'no permission': {}, owner: {} };
  const sockets: Client[] = [];
  before(async () => {
    stack = await startTestStack(database!, { AUTH_DEV_LOGIN: 'true', ANONYMOUS_REQUESTS_PER_SECOND: '1000', ANONYMOUS_BURST: '1000' });
    const owner = await signUp(stack, 'policies');
    headers.owner = owner.headers;
    headers['no permission'] = (await serviceKey(stack, owner, { roles: [] })).headers;
  });
  after(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    await stack?.close();
  });

  test('the inventory is what the supergraph restricts', () => {
    const restricted = restrictedFields().map((r) => r.coordinate);
    for (const coordinate of ['Mutation.createRole', 'Mutation.addGroupMember', 'Mutation.recordUsage', 'Query.tenant', 'Tenant.serviceAccounts', 'Subscription.answerStream']) {
      assert.ok(restricted.includes(coordinate), coordinate);
    }
    assert.ok(restricted.length >= 40, `${restricted.length} restricted fields`);
    assert.ok(rateLimitedFields().some((f) => f.coordinate === 'Mutation.createTenant'));
  });

  test('each restricted field is refused to a caller without the right, in every form, over HTTP and WebSocket', async () => {
    const failures: string[] = [];
    for (const { coordinate, deniedTo } of restrictedFields()) {
      const socket = connect(stack, headers[deniedTo].authorization);
      sockets.push(socket);
      const transports: [string, (query: string) => Promise<Answer>][] = [
        ['WebSocket', (query) => overWebSocket(socket, query)],
        ...(coordinate.startsWith('Subscription.') ? [] : [['HTTP', async (query: string) => (await postGraphQL(stack.gatewayUrl, query, {}, headers[deniedTo])).body as Answer] as [string, (query: string) => Promise<Answer>]]),
      ];
      for (const form of FORMS) {
        const { query, key } = operationFor(coordinate, form);
        for (const [transport, ask] of transports) {
          const answer = await ask(query);
          const codes = codesAt(answer, key);
          if (!codes.includes('UNAUTHORIZED_FIELD_OR_TYPE')) failures.push(`${coordinate} (${form}, ${transport}): ${JSON.stringify(answer).slice(0, 300)}`);
        }
      }
    }
    assert.deepEqual(failures, []);
  });

  test('and granted to the owner, who holds every permission, in every form, over HTTP and WebSocket (queries)', async () => {
    const failures: string[] = [];
    const socket = connect(stack, headers.owner.authorization);
    sockets.push(socket);
    const queries = restrictedFields().filter(({ coordinate }) => !coordinate.startsWith('Mutation.') && !coordinate.startsWith('Subscription.'));
    assert.ok(queries.length >= 10);
    for (const { coordinate } of queries) {
      for (const form of FORMS) {
        const { query, key } = operationFor(coordinate, form);
        for (const answer of [(await postGraphQL(stack.gatewayUrl, query, {}, headers.owner)).body as Answer, await overWebSocket(socket, query)]) {
          if (codesAt(answer, key).includes('UNAUTHORIZED_FIELD_OR_TYPE')) failures.push(`${coordinate} (${form}): ${JSON.stringify(answer).slice(0, 300)}`);
        }
      }
    }
    assert.deepEqual(failures, []);
  });
});

for (const limits of redisVariants()) {
  describe(`every rate-limited field, however selected, limits in ${limits.name}`, { skip: limits.skip }, () => {
    // A stack of its own: nothing has spent any of its limits yet.
    let stack: TestStack;
    let owner: Member;
    const sockets: Client[] = [];
    before(async () => {
      stack = await startTestStack(database!, {
        AUTH_DEV_LOGIN: 'true',
        ANONYMOUS_REQUESTS_PER_SECOND: '1000',
        ANONYMOUS_BURST: '1000',
        ...(limits.url ? { REDIS_URL: limits.url, REDIS_KEY_PREFIX: `test:${Date.now()}:${Math.random()}:` } : {}),
      });
      // Signed up past the gateway, so that no per-address limit (createTenant's) is spent before the test counts it.
      owner = await signUp(stack, 'limits', { pastGateway: true });
    });
    after(async () => {
      await Promise.all(sockets.map((socket) => socket.dispose()));
      await stack?.close();
    });

    // The limits replenish at max per window; these calls take far less than one replenishment (3 s for 20 a minute).
    test('each rate-limited field counts in every form and transport, and past its limit is refused in every one', async () => {
      for (const { coordinate, max, by } of rateLimitedFields()) {
        // A per-address limit counts anonymous callers too; the others count a signed-in one, who holds every permission.
        const caller: Record<string, string> = by === 'IP' ? {} : owner.headers;
        const socket = connect(stack, caller.authorization);
        sockets.push(socket);
        const ways = FORMS.flatMap((form) => [
          { form, transport: 'HTTP', ask: async (query: string) => (await postGraphQL(stack.gatewayUrl, query, {}, caller)).body as Answer },
          { form, transport: 'WebSocket', ask: (query: string) => overWebSocket(socket, query) },
        ]);
        for (let i = 0; i < max; i++) {
          const way = ways[i % ways.length]!;
          const { query, key } = operationFor(coordinate, way.form);
          const codes = codesAt(await way.ask(query), key);
          assert.ok(!codes.includes('RATE_LIMITED'), `${coordinate} call ${i + 1} of ${max} (${way.form}, ${way.transport}) was refused early`);
        }
        for (const way of ways) {
          const { query, key } = operationFor(coordinate, way.form);
          const answer = await way.ask(query);
          assert.ok(codesAt(answer, key).includes('RATE_LIMITED'), `${coordinate} past its limit (${way.form}, ${way.transport}): ${JSON.stringify(answer).slice(0, 300)}`);
        }
      }
    });
  });
}
