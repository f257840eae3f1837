/**
 * The isolation matrix: three tenants — two SHARED, one DEDICATED — hold data in every subgraph, and each
 * attacks the others through every door: queries, mutations naming their ids, `_entities` sent straight to
 * each subgraph with a valid principal, every subscription of the API over graphql-ws through the gateway,
 * guessed ids, and API keys. Nothing crosses; tenants streaming at once each get their own events only.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Kind, parse, type FieldDefinitionNode } from 'graphql';
import pg from 'pg';
import { PRINCIPAL_HEADER, principalSigner, type Principal } from '@jarvis/platform/contracts';
import { dedicatedSchemaName, schemaName } from '@jarvis/platform/db';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { answers, ending, usageOf, type AnswerEvent } from './answers.ts';
import { as, respond, startTestStack, type TestStack } from './helpers.ts';
import { addDocument, forbiddenFor, pairs, populate, secretsOf, snapshot, VAULT_QUESTION, type Holdings } from './isolation-tenants.ts';

/** The fields of the API's `type Subscription` (schema/api.graphql), with their arguments. */
function subscriptionFields(): Map<string, string[]> {
  const api = parse(readFileSync(new URL('../schema/api.graphql', import.meta.url), 'utf8'));
  const fields: readonly FieldDefinitionNode[] = api.definitions.flatMap((definition) =>
    (definition.kind === Kind.OBJECT_TYPE_DEFINITION || definition.kind === Kind.OBJECT_TYPE_EXTENSION) && definition.name.value === 'Subscription'
      ? (definition.fields ?? [])
      : [],
  );
  return new Map(fields.map((field) => [field.name.value, (field.arguments ?? []).map((arg) => arg.name.value)]));
}

const DOCUMENT_FIELDS = 'id title status knowledgeBase { id name }';
const STATUS_CHANGES = `subscription($kb: ID!, $ids: [ID!]) { documentStatusChanged(knowledgeBaseId: $kb, documentIds: $ids) { ${DOCUMENT_FIELDS} } }`;
const RUN_EVENTS = `subscription($id: ID!, $after: Int) { runEvents(runId: $id, afterSeq: $after) { seq type name output } }`;
const ANSWER_EVENTS = `subscription($id: ID!, $after: Int) { answerStream(messageId: $id, afterSeq: $after) { messageId seq type delta usage { promptTokens } } }`;

/**
 * An attack on a subscription: the operation and its variables, and what must come of it — refused outright, or
 * accepted for the attacker's own data, in which case `settled` says when all the attacker may see has come.
 */
interface SubscriptionAttack {
  query: string;
  variables: Record<string, unknown>;
  /** Unset: must be refused. */
  settled?: (results: unknown[]) => boolean;
}

for (const variant of databaseVariants()) {
  describe(`tenant isolation matrix on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let chat: ReturnType<typeof answers>;
    const tenants: Record<'A' | 'B' | 'D', Holdings> = {} as never;

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', TOKEN_EXCHANGE_CACHE_SECONDS: '0' });
      chat = answers(stack);
      tenants.A = await populate(stack, chat, 'iso-a', 'SHARED');
      tenants.B = await populate(stack, chat, 'iso-b', 'SHARED');
      tenants.D = await populate(stack, chat, 'iso-d', 'DEDICATED');
    });
    after(async () => {
      await chat?.close();
      await stack?.close();
    });

    test("each tenant's own view holds its data and nothing of the others", async () => {
      for (const [x, y] of pairs()) {
        const seen = JSON.stringify(await snapshot(stack, tenants[x]));
        assert.ok(seen.includes(tenants[x].knowledgeBaseId) && seen.includes(tenants[x].conversationId), `${x} sees its own data`);
        for (const secret of secretsOf(tenants[y])) assert.ok(!seen.includes(secret), `${x} saw ${y}'s ${secret}`);
      }
    });

    test("mutations naming another tenant's ids find nothing and change nothing", async () => {
      const before = { A: await snapshot(stack, tenants.A), B: await snapshot(stack, tenants.B), D: await snapshot(stack, tenants.D) };
      for (const [x, y] of pairs()) {
        const attacker = tenants[x].member;
        const victim = tenants[y];
        const attempts: [string, Record<string, unknown>][] = [
          [`mutation($g: ID!, $u: ID!) { addGroupMember(groupId: $g, userId: $u) { id } }`, { g: victim.groupId, u: tenants[x].memberId }],
          [`mutation($g: ID!, $u: ID!) { addGroupMember(groupId: $g, userId: $u) { id } }`, { g: tenants[x].groupId, u: victim.memberId }],
          [`mutation($g: ID!, $u: ID!) { removeGroupMember(groupId: $g, userId: $u) { id } }`, { g: victim.groupId, u: victim.memberId }],
          [`mutation($u: ID!) { assignRole(input: { role: "viewer", userId: $u }) { role } }`, { u: victim.memberId }],
          [`mutation($u: ID!) { revokeRole(input: { role: "owner", userId: $u }) }`, { u: victim.member.userId }],
          [`mutation($s: ID!) { assignRole(input: { role: "viewer", serviceAccountId: $s }) { role } }`, { s: victim.serviceAccountId }],
          [`mutation($k: ID!) { revokeApiKey(id: $k) { id } }`, { k: victim.keyId }],
          [`mutation($u: ID!) { removeMember(userId: $u) }`, { u: victim.memberId }],
          [`mutation($g: ID!) { deleteGroup(id: $g) }`, { g: victim.groupId }],
          [`mutation($s: ID!) { createApiKey(input: { serviceAccountId: $s, name: "stolen" }) { secret } }`, { s: victim.serviceAccountId }],
          [`mutation($d: ID!) { addDefinitionVersion(input: { definitionId: $d, source: "instructions: x" }) { number } }`, { d: victim.definitionId }],
          [`mutation($d: ID!) { publishDefinition(input: { definitionId: $d, version: 1, label: "stolen" }) { name } }`, { d: victim.definitionId }],
          [`mutation($d: ID!) { rollbackDefinition(input: { definitionId: $d }) { name } }`, { d: victim.definitionId }],
          [`mutation($r: ID!) { approveRun(input: { runId: $r }) { id } }`, { r: victim.runId }],
          [`mutation($r: ID!) { rejectRun(input: { runId: $r }) { id } }`, { r: victim.runId }],
          [`mutation($r: ID!) { cancelRun(id: $r) { id } }`, { r: victim.runId }],
          [`mutation($d: ID!) { startRun(input: { definitionId: $d }) { id } }`, { d: victim.definitionId }],
        ];
        for (const [query, variables] of attempts) {
          const response = await respond(stack, attacker, query, variables);
          assert.ok(response.errors?.length, `${x} → ${y}: ${query} succeeded: ${JSON.stringify(response)}`);
          const code = response.errors[0]!.extensions?.code;
          assert.ok(code === 'NOT_FOUND' || code === 'BAD_USER_INPUT', `${x} → ${y}: ${query} gave ${code}`);
        }
      }
      const afterwards = { A: await snapshot(stack, tenants.A), B: await snapshot(stack, tenants.B), D: await snapshot(stack, tenants.D) };
      assert.deepEqual(afterwards, before);
    });

    test("_entities sent straight to every subgraph with a valid principal of one tenant returns nothing of another", async () => {
      const signer = principalSigner(stack.config.INTERNAL_AUTH_SECRET!);
      for (const [x, y] of pairs()) {
        const principal: Principal = {
          tenantId: tenants[x].member.tenantId,
          userId: tenants[x].member.userId,
          roles: ['owner'],
          scopes: ['usage:write'],
          permissions: [
            'kb:read', 'kb:write', 'kb:manage', 'chat:use', 'usage:read', 'members:read', 'members:manage', 'apikeys:manage', 'tenant:admin',
            'agents:read', 'agents:write', 'agents:run', 'agents:approve',
          ],
          isolation: x === 'D' ? 'DEDICATED' : 'SHARED',
        };
        const headers = { 'content-type': 'application/json', [PRINCIPAL_HEADER]: await signer.sign(principal) };
        const victim = tenants[y];
        const requests: [string, string, unknown[]][] = [
          ['tenancy', `... on Tenant { id name users { email } } ... on User { id email }`, [
            { __typename: 'Tenant', id: victim.member.tenantId },
            { __typename: 'User', id: victim.memberId, tenant: { id: victim.member.tenantId } },
            // a guessed pairing: the victim's user under the attacker's own tenant
            { __typename: 'User', id: victim.memberId, tenant: { id: tenants[x].member.tenantId } },
          ]],
          ['knowledge', `... on Tenant { knowledgeBases { id name } }`, [{ __typename: 'Tenant', id: victim.member.tenantId }]],
          ['chat', `... on Tenant { conversations { id title } }`, [{ __typename: 'Tenant', id: victim.member.tenantId }]],
          ['usage', `... on Tenant { usage { totals { quantity } } }`, [{ __typename: 'Tenant', id: victim.member.tenantId }]],
          ['agents', `... on Tenant { definitions { id name } runs { id } } ... on Definition { id name versions { source } } ... on Run { id input }`, [
            { __typename: 'Tenant', id: victim.member.tenantId },
            { __typename: 'Definition', id: victim.definitionId },
            { __typename: 'Run', id: victim.runId },
          ]],
        ];
        for (const [subgraph, selection, representations] of requests) {
          const response = await fetch(stack.subgraphUrls[subgraph]!, {
            method: 'POST',
            headers,
            body: JSON.stringify({ query: `query($r: [_Any!]!) { _entities(representations: $r) { ${selection} } }`, variables: { r: representations } }),
          });
          const text = await response.text();
          const label = `iso-${y.toLowerCase()}`;
          for (const secret of [...secretsOf(victim), `Secrets of ${label}`, `Talk of ${label}`]) {
            assert.ok(!text.includes(secret), `${x} → ${y} via ${subgraph} revealed ${secret}: ${text}`);
          }
          const body = JSON.parse(text) as { data?: { _entities: unknown[] }; errors?: { extensions?: { code?: string } }[] };
          const empty = (entity: unknown) => entity === null || Object.values(entity as object).every((value) => value === null);
          assert.ok(body.data?._entities.every(empty), `${x} → ${y} via ${subgraph}: ${text}`);
          assert.ok(body.errors?.some((e) => e.extensions?.code === 'FORBIDDEN'), `${x} → ${y} via ${subgraph}: ${text}`);
        }
      }
    });

    /** Each subscription of the API, attacked with another tenant's ids; a field without attacks fails the test below. */
    const SUBSCRIPTION_ATTACKS: Record<string, (own: Holdings, victim: Holdings) => SubscriptionAttack[]> = {
      runEvents: (_own, victim) => [
        { query: RUN_EVENTS, variables: { id: victim.runId } },
        { query: RUN_EVENTS, variables: { id: victim.runId, after: 1 } },
      ],
      answerStream: (_own, victim) => [
        { query: ANSWER_EVENTS, variables: { id: victim.answerId } },
        { query: ANSWER_EVENTS, variables: { id: victim.answerId, after: 1 } },
      ],
      documentStatusChanged: (own, victim) => [
        { query: STATUS_CHANGES, variables: { kb: victim.knowledgeBaseId } },
        { query: STATUS_CHANGES, variables: { kb: victim.knowledgeBaseId, ids: [victim.documentId] } },
        { query: STATUS_CHANGES, variables: { kb: victim.knowledgeBaseId, ids: [own.documentId] } },
        // Its own knowledge base, naming the victim's document first: the named documents come in order, so once
        // its own has come, the victim's would have.
        {
          query: STATUS_CHANGES,
          variables: { kb: own.knowledgeBaseId, ids: [victim.documentId, own.documentId] },
          settled: (results) => JSON.stringify(results).includes(own.documentId),
        },
      ],
    };

    test('every subscription field of the API, and each of its arguments, is attacked below', () => {
      const fields = subscriptionFields();
      assert.deepEqual(Object.keys(SUBSCRIPTION_ATTACKS).sort(), [...fields.keys()].sort(), 'a subscription without attacks in the matrix');
      for (const [field, args] of fields) {
        const queries = SUBSCRIPTION_ATTACKS[field]!(tenants.A, tenants.B).map((attack) => attack.query);
        for (const arg of args) assert.ok(queries.some((query) => query.includes(`${arg}:`)), `${field}(${arg}) is never sent`);
      }
    });

    test("every subscription, over graphql-ws through the gateway, refuses another tenant's ids and sends nothing of it, while its tenant listens too", async () => {
      // Every tenant follows its own document meanwhile: nothing of its subscriptions may serve another's.
      const listening = (['A', 'B', 'D'] as const).map((t) =>
        chat.follow(tenants[t].member, STATUS_CHANGES, { kb: tenants[t].knowledgeBaseId, ids: [tenants[t].documentId] }),
      );
      await waitFor(() => listening.every((watch) => watch.results.length > 0), 'each tenant to receive its own document');
      for (const [x, y] of pairs()) {
        for (const [field, attacksOf] of Object.entries(SUBSCRIPTION_ATTACKS)) {
          for (const attack of attacksOf(tenants[x], tenants[y])) {
            const label = `${x} → ${y}: ${field}(${JSON.stringify(attack.variables)})`;
            const watch = chat.follow(tenants[x].member, attack.query, attack.variables);
            let ended = false;
            void watch.ended.then(() => (ended = true));
            if (attack.settled) {
              await waitFor(() => attack.settled!(watch.results), `${label}: the attacker's own document`, { timeoutMs: 10_000 });
              watch.stop();
              assert.deepEqual(watch.results.filter((result) => result.errors), [], label);
            } else {
              await waitFor(() => ended, `${label}: the subscription to be refused`, { timeoutMs: 10_000 });
              assert.deepEqual(watch.results, [], `${label}: no event`);
              const codes = (watch.failure() as { extensions?: { code?: string } }[]).map((error) => error.extensions?.code);
              assert.deepEqual(codes, ['NOT_FOUND'], label);
            }
            const seen = JSON.stringify({ results: watch.results, failure: watch.failure() });
            for (const secret of forbiddenFor(tenants[y], attack.variables)) assert.ok(!seen.includes(secret), `${label} revealed ${secret}: ${seen}`);
          }
        }
      }
      for (const watch of listening) watch.stop();
    });

    test('tenants streaming at once, each asking and adding a document, get all their own events and none of the others', async () => {
      const all = [tenants.A, tenants.B, tenants.D];
      type StatusResult = { documentStatusChanged: { id: string; status: string; knowledgeBase: { id: string } } };
      const watches = all.map((t) => chat.follow<StatusResult>(t.member, STATUS_CHANGES, { kb: t.knowledgeBaseId }));
      const statuses = (index: number, documentId: string) =>
        watches[index]!.results.flatMap((r) => (r.data?.documentStatusChanged.id === documentId ? [r.data.documentStatusChanged.status] : []));
      // Live once a change reaches it: each tenant re-ingests its document until one of its changes does.
      await Promise.all(
        all.map((t, i) =>
          waitFor(
            async () => {
              if (statuses(i, t.documentId).length === 0) await as(stack, t.member, `mutation($id: ID!) { reingestDocument(id: $id) { id } }`, { id: t.documentId });
              return statuses(i, t.documentId).length > 0;
            },
            `${t.label}'s subscription to deliver`,
            { timeoutMs: 30_000, intervalMs: 250 },
          ),
        ),
      );

      const streamed = await Promise.all(
        all.map(async (t, i) => {
          const [answerId, documentId] = await Promise.all([
            chat.start(t.member, VAULT_QUESTION, [t.knowledgeBaseId]),
            addDocument(stack, t.member, t.knowledgeBaseId, `News of ${t.label}`, `# News\n\n${t.label} opened an office in ${t.secret}ville.\n`),
          ]);
          const events = await chat.events(t.member, answerId);
          await waitFor(() => statuses(i, documentId), `${t.label}'s new document to become READY over its subscription`, {
            until: (seen) => seen.includes('READY'),
            timeoutMs: 30_000,
          });
          return { events, documentId };
        }),
      );
      for (const watch of watches) watch.stop();

      all.forEach((t, i) => {
        const { events, documentId } = streamed[i]!;
        assertCompleteAnswer(events, t.label);
        assert.match(events.map((event) => event.delta ?? '').join(''), new RegExp(t.secret), `${t.label}'s answer quotes its own document`);
        const seen = statuses(i, documentId);
        assert.deepEqual(seen, ['PENDING', 'PROCESSING', 'READY'].filter((status) => seen.includes(status)), `${t.label}: statuses in order, each once`);
        for (const result of watches[i]!.results) {
          assert.equal(result.errors, undefined, JSON.stringify(result.errors));
          assert.equal(result.data?.documentStatusChanged.knowledgeBase.id, t.knowledgeBaseId, `${t.label} received a document of another knowledge base`);
          assert.ok([t.documentId, documentId].includes(result.data.documentStatusChanged.id), `${t.label} received ${JSON.stringify(result.data)}`);
        }
        const received = JSON.stringify({ events, documents: watches[i]!.results });
        for (const other of all.filter((o) => o !== t)) {
          for (const secret of [...secretsOf(other), streamed[all.indexOf(other)]!.documentId, `News of ${other.label}`]) {
            assert.ok(!received.includes(secret), `${t.label} received ${other.label}'s ${secret}`);
          }
        }
      });
    });

    test('guessed ids find nothing', async () => {
      const owner = tenants.A.member;
      for (const query of [
        `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`,
        `mutation($id: ID!) { addGroupMember(groupId: $id, userId: $id) { id } }`,
        `mutation($id: ID!) { createApiKey(input: { serviceAccountId: $id, name: "x" }) { secret } }`,
      ]) {
        const response = await respond(stack, owner, query, { id: randomUUID() });
        assert.equal(response.errors?.[0]?.extensions?.code, 'NOT_FOUND', query);
      }
    });

    test("an API key reads only its own tenant, and one re-labelled with another tenant's id is refused", async () => {
      for (const [x, y] of pairs()) {
        const key = { headers: { authorization: `Bearer ${tenants[x].keySecret}` } };
        const seen = JSON.stringify(await as(stack, key, `{ tenant { id knowledgeBases { id } conversations { id } } }`));
        assert.ok(seen.includes(tenants[x].knowledgeBaseId));
        for (const secret of secretsOf(tenants[y])) assert.ok(!seen.includes(secret), `${x}'s key saw ${y}'s ${secret}`);

        const relabelled = tenants[x].keySecret.replace(tenants[x].member.tenantId, tenants[y].member.tenantId);
        const refused = await respond(stack, { headers: { authorization: `Bearer ${relabelled}` } }, `{ tenant { id } }`);
        assert.deepEqual([refused.status, refused.errors?.[0]?.extensions?.code], [401, 'UNAUTHENTICATED']);
      }
    });

    // Looked at in PostgreSQL, which the test can reach; the PGlite placement is in platform/test/database.test.ts.
    if (variant.url) test("a DEDICATED tenant's data lives in schemas of its own", async () => {
      const client = new pg.Client({ connectionString: variant.url });
      await client.connect();
      // One knowledge base, one recorded meter and one definition each; conversations: the one started, and one per question asked.
      const held = async (holdings: Holdings, subgraph: string) =>
        subgraph === 'chat'
          ? (await as<{ tenant: { conversations: unknown[] } }>(stack, holdings.member, `{ tenant { conversations(first: 100) { id } } }`)).tenant.conversations.length
          : 1;
      try {
        for (const subgraph of ['knowledge', 'chat', 'usage', 'agents']) {
          const shared = schemaName(subgraph, stack.config.DATABASE_SCHEMA_PREFIX);
          const own = dedicatedSchemaName(shared, tenants.D.member.tenantId);
          const count = async (schema: string, table: string) =>
            Number((await client.query(`SELECT count(*) FROM ${schema}.${table} WHERE tenant_id = $1`, [tenants.D.member.tenantId])).rows[0].count);
          const table = { knowledge: 'knowledge_bases', chat: 'conversations', usage: 'client_usage', agents: 'definitions' }[subgraph]!;
          assert.deepEqual([await count(own, table), await count(shared, table)], [await held(tenants.D, subgraph), 0], subgraph);
          const sharedTenantRows = Number((await client.query(`SELECT count(*) FROM ${shared}.${table} WHERE tenant_id = $1`, [tenants.A.member.tenantId])).rows[0].count);
          assert.equal(sharedTenantRows, await held(tenants.A, subgraph), `a SHARED tenant's ${table} stay in ${shared}`);
        }
      } finally {
        await client.end();
      }
    });
  });
}

/** An answer's events as a reader must see them: 1, 2, 3… with no gap, tokens as many as its usage counts, DONE last. */
function assertCompleteAnswer(events: AnswerEvent[], label: string) {
  assert.deepEqual(events.map((event) => event.seq), events.map((_, i) => i + 1), `${label}: every seq from 1, in order`);
  assert.equal(ending(events).type, 'DONE', `${label}: ${JSON.stringify(ending(events))}`);
  const tokens = events.filter((event) => event.type === 'TOKEN').length;
  assert.ok(tokens > 0 && tokens === usageOf(events).completionTokens, `${label}: ${tokens} tokens for ${usageOf(events).completionTokens} completion tokens`);
}
