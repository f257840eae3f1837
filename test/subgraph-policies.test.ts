/**
 * Every field carrying @policy in a subgraph's SDL is checked by that subgraph itself, without the gateway: the
 * schema each subgraph serves (its SDL with the resolvers its definition hands the server) refuses a caller
 * lacking the permission — holding nothing, or everything else — with the error services' requirePermission
 * raises, and lets a holder through. The fields are read from the SDL by the gateway's own reader, so the
 * subgraphs' reader cannot leave one out unnoticed.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { isObjectType, type GraphQLResolveInfo, type GraphQLSchema } from 'graphql';
import { agentsSubgraph } from '@jarvis/agents';
import { chatSubgraph } from '@jarvis/chat';
import { knowledgeSubgraph } from '@jarvis/knowledge';
import { SUBGRAPHS } from '@jarvis/platform/config';
import { ANONYMOUS, PERMISSIONS, requirePermission, type Permission, type Principal } from '@jarvis/platform/contracts';
import { AppError } from '@jarvis/platform/errors';
import { readSubgraphSdl } from '@jarvis/platform/schema';
import { tenancySubgraph } from '@jarvis/tenancy';
import { usageSubgraph } from '@jarvis/usage';
import { readAuthorization } from '../gateway/src/authorization/index.ts';
import { fieldPolicies, servedSchema } from '@jarvis/platform/subgraph';

const DEFINITIONS = { tenancy: tenancySubgraph, knowledge: knowledgeSubgraph, chat: chatSubgraph, usage: usageSubgraph, agents: agentsSubgraph };

/** Each `Type.field` of the SDL carrying @policy, with the permissions its rules name, as the gateway reads them. */
function policyFields(sdl: string): Map<string, string[]> {
  const { rules } = readAuthorization(sdl);
  return new Map(
    [...rules.fields]
      .filter(([, requirement]) => requirement.policies.length > 0)
      .map(([coordinate, requirement]) => [coordinate, [...new Set(requirement.policies.flat(2))]]),
  );
}

type Call = (principal: Principal) => Promise<unknown>;

/** The schema the subgraph's server serves, built as the server builds it. */
const servedSchemaOf = (name: keyof typeof DEFINITIONS) => servedSchema(name, DEFINITIONS[name].resolvers);

/** Calls `Type.field` as the schema resolves it (subscribes, for a subscription), with nothing but a caller. */
function fieldOf(schema: GraphQLSchema, coordinate: string): Call {
  const [typeName, fieldName] = coordinate.split('.') as [string, string];
  const type = schema.getType(typeName);
  assert.ok(isObjectType(type), `${typeName} is an object type`);
  const field = type.getFields()[fieldName]!;
  const resolve = field.subscribe ?? field.resolve;
  assert.ok(resolve, `${coordinate} has a resolver`);
  return async (principal) => resolve({ id: principal.tenantId ?? randomUUID() }, {}, { principal }, {} as GraphQLResolveInfo);
}

async function refusal(call: Call, principal: Principal): Promise<{ code: string; message: string } | undefined> {
  try {
    await call(principal);
  } catch (error) {
    if (error instanceof AppError) return { code: error.code, message: error.message };
  }
  return undefined;
}

/** What requirePermission says to this caller about this permission. */
function serviceRefusal(principal: Principal, permission: string) {
  try {
    requirePermission(principal, permission as Permission);
  } catch (error) {
    return { code: (error as AppError).code, message: (error as AppError).message };
  }
  return undefined;
}

const ALL = Object.keys(PERMISSIONS);
const caller = (permissions: string[]): Principal => ({ ...ANONYMOUS, tenantId: randomUUID(), permissions });

describe("every @policy field of every subgraph's SDL, called on the subgraph without the gateway", () => {
  test('the subgraphs check the fields the gateway reads, and there are plenty', () => {
    let total = 0;
    for (const { name } of SUBGRAPHS) {
      const sdl = readSubgraphSdl(name);
      const fields = [...policyFields(sdl).keys()].sort();
      assert.ok(fields.length > 0, `${name} declares @policy fields`);
      assert.deepEqual([...fieldPolicies(sdl).keys()].sort(), fields, name);
      total += fields.length;
    }
    assert.ok(total >= 40, `${total} @policy fields`);
  });

  for (const { name } of SUBGRAPHS) {
    test(`${name}: each refuses a caller without its permission with requirePermission's error, and lets a holder through`, async () => {
      const failures: string[] = [];
      const schema = servedSchemaOf(name);
      for (const [coordinate, named] of policyFields(readSubgraphSdl(name))) {
        const call = fieldOf(schema, coordinate);
        const [permission] = named;
        const refusedAs = (principal: Principal) => (named.length === 1 ? serviceRefusal(principal, permission!) : { code: 'FORBIDDEN', message: undefined });
        for (const [who, principal] of [
          ['an anonymous caller', ANONYMOUS],
          ['a caller holding nothing', caller([])],
          ['a caller holding everything else', caller(ALL.filter((p) => !named.includes(p)))],
        ] as const) {
          const got = await refusal(call, principal);
          const expected = refusedAs(principal);
          if (got?.code !== expected?.code || (expected?.message !== undefined && got?.message !== expected.message)) {
            failures.push(`${coordinate}, ${who}: ${JSON.stringify(got)} instead of ${JSON.stringify(expected)}`);
          }
        }
        const holder = await refusal(call, caller(named));
        if (holder?.code === 'FORBIDDEN' || holder?.code === 'UNAUTHENTICATED') failures.push(`${coordinate}: a holder was refused (${holder.message})`);
      }
      assert.deepEqual(failures, []);
    });
  }
});
