/**
 * The usage ledger is Jarvis's own: what it measures itself (tokens, storage, requests) enters only from its
 * events, and what a tenant's services record (recordUsage) is kept under meters of their own, in a key space of
 * their own. A usage:write key that claims the ids real events will use drops none of them; recordUsage cannot
 * name a self-measured metric; a tenant's meters are reported apart, once per key; and the gateway's own door
 * for the requests it metered is not in the API and opens only for the gateway's meter scope.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { postGraphQL } from '@jarvis/platform/client';
import { METER_SCOPE, PRINCIPAL_HEADER, principalSigner, USAGE_METRICS, type Principal } from '@jarvis/platform/contracts';
import { uuidOf } from '@jarvis/platform/ids';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { answers, usageOf } from './answers.ts';
import { addMember, as, errorCodes, respond, serviceKey, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const RECORD = `mutation($u: RecordUsageInput!) { recordUsage(input: $u) { id meter quantity idempotencyKey userId model } }`;
const METERED = `mutation($quantity: Int!, $key: String!) { recordMeteredRequests(quantity: $quantity, idempotencyKey: $key) }`;

interface Summary {
  totals: { metric: string; quantity: number }[];
  meters: { meter: string; quantity: number }[];
  groups: { key: string | null; totals: { metric: string; quantity: number }[]; meters: { meter: string; quantity: number }[] }[];
}

const EMBEDDING_DIMENSIONS = 8;

/**
 * An OpenAI-compatible embeddings endpoint that answers only while open: closed, it holds a document's
 * ingestion and an answer's passage search (both embed), so work can be caught before its events are written.
 */
async function startEmbeddingGate() {
  let open = true;
  const held: { inputs: string[]; answer: () => void }[] = [];
  const server = createServer(async (request, response) => {
    let raw = '';
    for await (const chunk of request) raw += chunk;
    const body = JSON.parse(raw) as { input: string | string[]; encoding_format?: string };
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const answer = () => {
      const data = inputs.map((text, index) => {
        const vector = Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) => ((text.length * (i + 1)) % 7) + 1);
        const embedding = body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
        return { object: 'embedding', index, embedding };
      });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ object: 'list', data, model: 'gate', usage: { prompt_tokens: 0, total_tokens: 0 } }));
    };
    if (open) answer();
    else held.push({ inputs, answer });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    /** Texts of the requests waiting at the gate. */
    heldInputs: () => held.flatMap((request) => request.inputs),
    hold: () => void (open = false),
    release() {
      open = true;
      for (const request of held.splice(0)) request.answer();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const gate = await startEmbeddingGate();
after(() => gate.close());

for (const variant of databaseVariants()) {
  describe(`the usage ledger is Jarvis's own, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let chat: ReturnType<typeof answers>;

    before(async () => {
      stack = await startTestStack(variant, {
        AUTH_DEV_LOGIN: 'true',
        OPENAI_BASE_URL: gate.baseURL,
        EMBEDDING_MODEL: 'gated-embedder',
        EMBEDDING_DIMENSIONS: String(EMBEDDING_DIMENSIONS),
        // The gateway's own request counts stay out of these totals (its door is tested directly).
        REQUEST_METER_FLUSH_MS: String(3_600_000),
      });
      chat = answers(stack);
    });
    after(async () => {
      gate.release();
      await chat?.close();
      await stack?.close();
    });

    const usage = async (member: Member, groupBy?: string) =>
      (
        await as<{ tenant: { usage: Summary } }>(
          stack,
          member,
          `query($by: UsageGroupBy) { tenant { usage(groupBy: $by) { totals { metric quantity } meters { meter quantity } groups { key totals { metric quantity } meters { meter quantity } } } } }`,
          { by: groupBy ?? null },
        )
      ).tenant.usage;
    const total = (summary: Summary, metric: string) => summary.totals.find((t) => t.metric === metric)!.quantity;

    async function addDocument(member: Member, knowledgeBaseId: string, content: string) {
      const { addDocument } = await as<{ addDocument: { id: string; contentHash: string; byteSize: number } }>(
        stack,
        member,
        `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id contentHash byteSize } }`,
        { input: { knowledgeBaseId, title: 'Notes', content } },
      );
      return addDocument;
    }

    const documentReady = (member: Member, id: string) =>
      waitFor(
        async () => (await as<{ document: { status: string } }>(stack, member, `query($id: ID!) { document(id: $id) { status } }`, { id })).document.status,
        `document ${id} to be READY`,
        { until: (status) => status === 'READY', timeoutMs: 30_000 },
      );

    test("a usage:write key claiming the ids of Jarvis's own events drops none: tokens and bytes reach the ledger exactly", async () => {
      const owner = await signUp(stack, 'claims');
      const key = await serviceKey(stack, owner, { scopes: ['usage:write'] });
      const { createKnowledgeBase } = await as<{ createKnowledgeBase: { id: string } }>(
        stack,
        owner,
        `mutation { createKnowledgeBase(input: { name: "Notes" }) { id } }`,
      );
      const kb = createKnowledgeBase.id;
      const first = await addDocument(owner, kb, '# Expenses\n\nTaxis are refunded up to 40 euros a ride.');
      await documentReady(owner, first.id);

      // Held at the embedder: the document's ingestion and the answer's passage search, before either writes its usage.
      gate.hold();
      const second = await addDocument(owner, kb, '# Travel\n\nTrains are booked in second class for trips under four hours.');
      const question = 'How are trains booked?';
      const answerId = await chat.start(owner, question, [kb]);
      await waitFor(() => gate.heldInputs(), 'the ingestion and the search to wait at the embedder', {
        until: (inputs) => inputs.includes(question) && inputs.length >= 2,
        timeoutMs: 30_000,
      });
      const eventIds = [
        ...['PROMPT_TOKENS', 'COMPLETION_TOKENS'].map((metric) => uuidOf(`chat-usage:${answerId}:${metric}`)),
        uuidOf(`storage:${second.id}:${second.contentHash}`),
        uuidOf(`storage-released:${second.id}:${second.contentHash}`),
      ];
      for (const [i, id] of eventIds.entries()) {
        for (const idempotencyKey of [id, `event:${id}`]) {
          const { recordUsage } = await as<{ recordUsage: { idempotencyKey: string } }>(stack, key, RECORD, {
            u: { meter: 'claims', quantity: i + 1, idempotencyKey },
          });
          assert.equal(recordUsage.idempotencyKey, idempotencyKey, 'the client key space takes any key of its own');
        }
      }
      gate.release();

      const answered = usageOf(await chat.events(owner, answerId));
      await documentReady(owner, second.id);
      const expected = [
        { metric: 'REQUESTS', quantity: 0 },
        { metric: 'PROMPT_TOKENS', quantity: answered.promptTokens },
        { metric: 'COMPLETION_TOKENS', quantity: answered.completionTokens },
        { metric: 'STORAGE_BYTES', quantity: first.byteSize + second.byteSize },
        { metric: 'TOOL_CALLS', quantity: 0 },
        { metric: 'RUNS', quantity: 0 },
      ];
      await waitFor(async () => (await usage(owner)).totals, 'the answer and both documents in the ledger', {
        until: (totals) => JSON.stringify(totals) === JSON.stringify(expected),
        timeoutMs: 20_000,
      });

      assert.deepEqual(await as(stack, owner, `mutation($id: ID!) { deleteDocument(id: $id) }`, { id: second.id }), { deleteDocument: true });
      await waitFor(async () => total(await usage(owner), 'STORAGE_BYTES'), "the deleted document's bytes released", {
        until: (bytes) => bytes === first.byteSize,
        timeoutMs: 20_000,
      });
      assert.deepEqual((await usage(owner)).meters, [{ meter: 'claims', quantity: 2 * (1 + 2 + 3 + 4) }], "the claims went to the tenant's own meter");
    });

    test('recordUsage cannot name what Jarvis measures itself, and the ledger stays as it was', async () => {
      const owner = await signUp(stack, 'self-measured');
      const key = await serviceKey(stack, owner, { scopes: ['usage:write'] });
      const before = await usage(owner);
      for (const metric of USAGE_METRICS) {
        const byEnum = await respond(stack, key, `mutation { recordUsage(input: { metric: ${metric}, quantity: 1000000, idempotencyKey: "${metric}" }) { id } }`);
        assert.equal(byEnum.data ?? null, null, `${metric} by the old input: ${JSON.stringify(byEnum)}`);
        assert.equal(byEnum.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED', JSON.stringify(byEnum.errors));
        for (const meter of [metric, metric.toLowerCase()]) {
          const byName = await respond(stack, key, RECORD, { u: { meter, quantity: 1_000_000, idempotencyKey: `${meter}-named` } });
          assert.deepEqual([byName.errors?.[0]?.extensions?.code, byName.errors?.[0]?.extensions?.field], ['BAD_USER_INPUT', 'meter'], meter);
        }
      }
      assert.deepEqual(await usage(owner), before);
    });

    test("a tenant's meters are reported apart from the totals, once per key and grouped like them; a key reused otherwise is a CONFLICT", async () => {
      const owner = await signUp(stack, 'meters');
      const member = await addMember(stack, owner, `member@${owner.slug}.test`, 'member');
      const key = await serviceKey(stack, owner, { scopes: ['usage:write'] });
      const sync = { meter: 'crm.sync_calls', quantity: 3, idempotencyKey: 'sync-1', userId: member.userId };
      const repeated = await Promise.all([1, 2, 3].map(() => as<{ recordUsage: { id: string } }>(stack, key, RECORD, { u: sync })));
      assert.equal(new Set(repeated.map((r) => r.recordUsage.id)).size, 1);
      const changed = await respond(stack, key, RECORD, { u: { ...sync, quantity: 4 } });
      assert.deepEqual([changed.errors?.[0]?.extensions?.code, changed.errors?.[0]?.extensions?.field], ['CONFLICT', 'idempotencyKey']);
      await as(stack, key, RECORD, { u: { meter: 'crm.sync_calls', quantity: 2, idempotencyKey: 'sync-2' } });
      await as(stack, key, RECORD, { u: { meter: 'mail:sent', quantity: 5, idempotencyKey: 'mail-1', model: 'mailer-1' } });
      const tooLong = await respond(stack, key, RECORD, { u: { meter: 'm'.repeat(65), quantity: 1, idempotencyKey: 'long' } });
      assert.equal(tooLong.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');

      const summary = await usage(owner);
      assert.deepEqual(summary.meters, [{ meter: 'crm.sync_calls', quantity: 5 }, { meter: 'mail:sent', quantity: 5 }]);
      assert.ok(summary.totals.every((t) => t.quantity === 0), `no metric moved: ${JSON.stringify(summary.totals)}`);
      const metersBy = async (groupBy: string) => (await usage(owner, groupBy)).groups.map(({ key, meters }) => ({ key, meters }));
      assert.deepEqual(await metersBy('USER'), [
        { key: member.userId, meters: [{ meter: 'crm.sync_calls', quantity: 3 }] },
        { key: null, meters: [{ meter: 'crm.sync_calls', quantity: 2 }, { meter: 'mail:sent', quantity: 5 }] },
      ]);
      assert.deepEqual(await metersBy('MODEL'), [
        { key: 'mailer-1', meters: [{ meter: 'mail:sent', quantity: 5 }] },
        { key: null, meters: [{ meter: 'crm.sync_calls', quantity: 5 }] },
      ]);
      assert.deepEqual(await metersBy('DAY'), [{ key: new Date().toISOString().slice(0, 10), meters: summary.meters }]);
    });

    test("the gateway's meter door is not in the API, refuses a tenant's principal, and counts a retried batch once", async () => {
      const owner = await signUp(stack, 'meter-door');
      const throughGateway = await respond(stack, owner, METERED, { quantity: 1_000_000, key: 'forged' });
      assert.equal(throughGateway.data ?? null, null);
      assert.equal(throughGateway.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED', JSON.stringify(throughGateway.errors));
      assert.match(throughGateway.errors![0]!.message, /recordMeteredRequests/);

      const signer = principalSigner(stack.config.INTERNAL_AUTH_SECRET!);
      const straightToUsage = async (principal: Principal, quantity: number, key: string) =>
        (await postGraphQL(stack.subgraphUrls.usage!, METERED, { quantity, key }, { [PRINCIPAL_HEADER]: await signer.sign(principal) })).body;
      const tenantAdmin: Principal = {
        tenantId: owner.tenantId,
        userId: owner.userId,
        roles: ['owner'],
        scopes: ['usage:write'],
        permissions: ['usage:read', 'tenant:admin'],
        isolation: 'SHARED',
      };
      assert.deepEqual(errorCodes(await straightToUsage(tenantAdmin, 1_000_000, 'forged')), { recordMeteredRequests: 'FORBIDDEN' });

      const meter: Principal = { tenantId: owner.tenantId, roles: [], scopes: [METER_SCOPE], permissions: [], isolation: 'SHARED' };
      for (const [quantity, key] of [[5, 'batch-1'], [5, 'batch-1'], [1, 'batch-2']] as const) {
        assert.deepEqual(await straightToUsage(meter, quantity, key), { data: { recordMeteredRequests: true } });
      }
      await waitFor(async () => total(await usage(owner), 'REQUESTS'), 'both batches in the ledger, the retried one once', {
        until: (requests) => requests === 6,
        timeoutMs: 20_000,
      });
    });
  });
}
