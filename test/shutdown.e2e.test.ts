/**
 * Stopping the stack as a rolling deployment does (SIGTERM → close): a GraphQL request already under way at the
 * gateway is answered, new connections are refused, and open subscriptions end with graphql-ws's 1001 (going away)
 * so clients know to reconnect elsewhere.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { as, signUp, startTestStack } from './helpers.ts';

const pglite = databaseVariants().find((variant) => variant.name === 'pglite')!;

test('closing the stack answers the request under way, refuses new ones and ends subscriptions with 1001', async () => {
  const stack = await startTestStack(pglite, { AUTH_DEV_LOGIN: 'true' });
  let closing: Promise<void> | undefined;
  try {
    const owner = await signUp(stack, 'shutdown', { name: 'Closing Ltd' });
    const kb = (await as<{ createKnowledgeBase: { id: string } }>(stack, owner, `mutation { createKnowledgeBase(input: { name: "Notes" }) { id } }`)).createKnowledgeBase.id;
    const doc = (await as<{ addDocument: { id: string } }>(stack, owner, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
      input: { knowledgeBaseId: kb, title: 'Note', content: 'A note.' },
    })).addDocument.id;

    // A subscription, live once its first event (the named document as it is now) has arrived.
    const closedWith = new Promise<number>((resolve) => {
      const client = createClient({
        url: stack.gatewayUrl.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: { authorization: owner.headers.authorization },
        retryAttempts: 0,
        on: { closed: (event) => resolve((event as { code: number }).code) },
      });
      client.subscribe({ query: `subscription($kb: ID!, $ids: [ID!]) { documentStatusChanged(knowledgeBaseId: $kb, documentIds: $ids) { id } }`, variables: { kb, ids: [doc] } }, {
        next: () => (live = true),
        error: () => {},
        complete: () => {},
      });
    });
    let live = false;
    await waitFor(() => live, 'the subscription to deliver its first event');

    // A request whose body is still arriving when the gateway starts closing.
    const body = JSON.stringify({ query: `query StillHere { tenant { name } }` });
    const url = new URL(stack.gatewayUrl);
    const answered = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const inFlight = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...owner.headers } },
        (response) => {
          let text = '';
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        },
      );
      inFlight.on('error', reject);
      inFlight.write(body.slice(0, 10));
      setTimeout(() => inFlight.end(body.slice(10)), 300);
    });
    await sleep(50);

    closing = stack.close();
    assert.equal(await closedWith, 1001, 'the subscription ends with 1001 (going away)');
    const refused = await fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.status, () => 'refused');
    assert.notEqual(refused, 200, 'no new request is taken');
    const { status, text } = await answered;
    assert.equal(status, 200);
    assert.deepEqual(JSON.parse(text), { data: { tenant: { name: 'Closing Ltd' } } });
  } finally {
    await (closing ?? stack.close());
  }
});
