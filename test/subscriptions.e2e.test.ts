/**
 * Federated subscriptions through the gateway over graphql-ws, with graphql-ws's own client: the knowledge
 * subgraph's documentStatusChanged, whose events also select fields other subgraphs own (the tenant's name
 * and the owner's email, from tenancy). Authentication in connection_init, authorization and the caller's
 * access rules hold as they do over HTTP, and a subgraph's WebSocket answers only the gateway.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { addMember, as, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const STATUS_CHANGES = `subscription($kb: ID!, $ids: [ID!]) {
  documentStatusChanged(knowledgeBaseId: $kb, documentIds: $ids) {
    id title status failureReason chunkCount
    knowledgeBase { name tenant { name } owner { email } }
  }
}`;

interface StatusEvent {
  id: string;
  title: string;
  status: string;
  failureReason: string | null;
  chunkCount: number;
  knowledgeBase: { name: string; tenant: { name: string }; owner: { email: string } | null };
}

type Result = FormattedExecutionResult<{ documentStatusChanged: StatusEvent }>;

const wsUrl = (stack: TestStack) => stack.gatewayUrl.replace(/^http/, 'ws');

function clientFor(stack: TestStack, caller?: Member, onClosed?: (event: unknown) => void): Client {
  return createClient({
    url: wsUrl(stack),
    webSocketImpl: WebSocket,
    connectionParams: caller ? { authorization: caller.headers.authorization } : {},
    retryAttempts: 0,
    on: onClosed ? { closed: onClosed } : {},
  });
}

/** The subscription's results as they come, and how it ended. */
function follow(client: Client, query: string, variables: Record<string, unknown>) {
  const results: Result[] = [];
  let failure: unknown;
  let completed = false;
  const ended = new Promise<void>((resolve) => {
    client.subscribe<Result['data']>(
      { query, variables },
      {
        next: (result) => void results.push(result as Result),
        error: (error) => {
          failure = error;
          resolve();
        },
        complete: () => {
          completed = true;
          resolve();
        },
      },
    );
  });
  return { results, ended, failure: () => failure, completed: () => completed };
}

for (const variant of databaseVariants()) {
  describe(`subscriptions through the gateway on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let knowledgeBaseId: string;
    const clients: Client[] = [];

    before(async () => {
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true' });
      owner = await signUp(stack, 'subscriptions', { name: 'Streaming Ltd' });
      knowledgeBaseId = (
        await as<{ createKnowledgeBase: { id: string } }>(
          stack,
          owner,
          `mutation($input: CreateKnowledgeBaseInput!) { createKnowledgeBase(input: $input) { id } }`,
          { input: { name: 'Handbooks', memberAccess: 'NONE' } },
        )
      ).createKnowledgeBase.id;
    });
    after(async () => {
      await Promise.all(clients.map((client) => client.dispose()));
      await stack?.close();
    });

    const connect = (caller?: Member, onClosed?: (event: unknown) => void) => {
      const client = clientFor(stack, caller, onClosed);
      clients.push(client);
      return client;
    };

    const addDocument = async (title: string, content: string, mediaType = 'text/markdown') =>
      (
        await as<{ addDocument: { id: string } }>(
          stack,
          owner,
          `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`,
          { input: { knowledgeBaseId, title, content, mediaType } },
        )
      ).addDocument.id;

    const reingest = (id: string) => as(stack, owner, `mutation($id: ID!) { reingestDocument(id: $id) { id } }`, { id });

    const statuses = (results: Result[], id: string) =>
      results.flatMap((result) => (result.data?.documentStatusChanged.id === id ? [result.data.documentStatusChanged.status] : []));

    test('a document streams its status to READY, with fields other subgraphs own resolved in each event', async () => {
      const marker = await addDocument('Marker', '# Marker\n\nShows when the subscription is live.');
      const watch = follow(connect(owner), STATUS_CHANGES, { kb: knowledgeBaseId });
      // Live once an event reaches it: the marker is re-ingested until one of its changes does.
      await waitFor(
        async () => {
          if (statuses(watch.results, marker).length === 0) await reingest(marker);
          return statuses(watch.results, marker);
        },
        'the subscription to deliver a change of the marker document',
        { until: (seen) => seen.length > 0, timeoutMs: 30_000, intervalMs: 250 },
      );
      const id = await addDocument('Expenses', '# Expenses\n\nReceipts are kept for ten years.');
      await waitFor(async () => statuses(watch.results, id), 'the document to become READY over the subscription', {
        until: (seen) => seen.includes('READY'),
        timeoutMs: 30_000,
      });
      for (const result of watch.results) assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      // Each event is the document as it is when sent: states that pass quicker than that are folded into it.
      const seen = statuses(watch.results, id);
      const order = ['PENDING', 'PROCESSING', 'READY'];
      assert.deepEqual(seen, order.filter((status) => seen.includes(status)), `statuses in order, each once: ${seen.join(' → ')}`);
      const ready = watch.results.findLast((result) => result.data?.documentStatusChanged.id === id)!.data!.documentStatusChanged;
      assert.equal(ready.title, 'Expenses');
      assert.ok(ready.chunkCount > 0);
      assert.deepEqual(ready.knowledgeBase, { name: 'Handbooks', tenant: { name: 'Streaming Ltd' }, owner: { email: owner.email } });
    });

    test('named documents are sent as they are now, then as they change; a bad one ends FAILED with its reason', async () => {
      const done = await addDocument('Holidays', '# Holidays\n\nThirty days a year.');
      await waitFor(async () => (await as<{ document: { status: string } }>(stack, owner, `query($id: ID!) { document(id: $id) { status } }`, { id: done })).document.status, 'READY', {
        until: (status) => status === 'READY',
        timeoutMs: 30_000,
      });
      const broken = await addDocument('Broken', '%PDF-1.7 this is not a PDF', 'application/pdf');
      const watch = follow(connect(owner), STATUS_CHANGES, { kb: knowledgeBaseId, ids: [done, broken] });
      await waitFor(async () => statuses(watch.results, broken), 'the broken document to fail', { until: (seen) => seen.includes('FAILED'), timeoutMs: 30_000 });
      assert.deepEqual(statuses(watch.results, done), ['READY'], 'the finished document once, as it is');
      const failed = watch.results.map((r) => r.data?.documentStatusChanged).find((doc) => doc?.id === broken && doc.status === 'FAILED')!;
      assert.match(failed.failureReason ?? '', /pdf/i);
    });

    test('a member who may not read the knowledge base is refused, and sees none of its documents', async () => {
      const member = await addMember(stack, owner, `member@${owner.slug}.test`, 'member');
      const watch = follow(connect(member), STATUS_CHANGES, { kb: knowledgeBaseId });
      await watch.ended;
      assert.equal(watch.results.length, 0);
      const errors = watch.failure() as { extensions?: { code?: string } }[];
      assert.equal(errors[0]?.extensions?.code, 'NOT_FOUND');
    });

    test('anonymous callers are refused by authorization; a bad token closes the socket with 4403', async () => {
      const anonymous = follow(connect(), STATUS_CHANGES, { kb: knowledgeBaseId });
      await anonymous.ended;
      const errors = anonymous.failure() as { extensions?: { code?: string } }[];
      assert.equal(errors[0]?.extensions?.code, 'UNAUTHORIZED_FIELD_OR_TYPE');

      let closedWith: number | undefined;
      const forged = { ...owner, headers: { authorization: 'Bearer not.a.token' } };
      const refused = follow(connect(forged, (event) => (closedWith = (event as { code: number }).code)), STATUS_CHANGES, { kb: knowledgeBaseId });
      await refused.ended;
      assert.equal(closedWith, 4403);
    });

    test('an invalid subscription is answered with validation errors, and queries run over the socket too', async () => {
      const invalid = follow(connect(owner), `subscription { documentStatusChanged(knowledgeBaseId: "x") { nope } }`, {});
      await invalid.ended;
      assert.match(JSON.stringify(invalid.failure()), /nope/);

      const query = follow(connect(owner), `query($id: ID!) { knowledgeBase(id: $id) { name tenant { name } } }`, { id: knowledgeBaseId });
      await query.ended;
      assert.ok(query.completed());
      assert.deepEqual(query.results[0]?.data, { knowledgeBase: { name: 'Handbooks', tenant: { name: 'Streaming Ltd' } } });
    });

    test("a subgraph's WebSocket refuses a connection without the gateway's signature", async () => {
      for (const payload of [{}, { 'x-jarvis-principal': 'forged.principal.token' }, { authorization: owner.headers.authorization }]) {
        const socket = new WebSocket(stack.subgraphUrls.knowledge!.replace(/^http/, 'ws'), 'graphql-transport-ws');
        const received: string[] = [];
        socket.on('message', (data) => received.push(JSON.parse(String(data)).type));
        socket.on('open', () => {
          socket.send(JSON.stringify({ type: 'connection_init', payload }));
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: STATUS_CHANGES, variables: { kb: knowledgeBaseId } } }));
        });
        await once(socket, 'close');
        assert.ok(!received.includes('connection_ack') && !received.includes('next'), `${JSON.stringify(payload)}: received ${received.join(', ')}`);
      }
    });
  });
}
