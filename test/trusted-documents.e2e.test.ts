/**
 * Persisted documents at the gateway. With a manifest of trusted documents and TRUSTED_DOCUMENTS_ONLY, a client
 * names documents by hash (POST, GET and WebSocket) and nothing else runs; without it, other clients use
 * automatic persisted queries.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { databaseVariants } from '@jarvis/platform/testing';
import { CREATE_TENANT, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';

const pglite = databaseVariants().find((variant) => variant.name === 'pglite')!;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const TENANT_NAME = 'query TenantName { tenant { name } }';
const KNOWLEDGE_BASE = 'query KnowledgeBase($id: ID!) { knowledgeBase(id: $id) { id } }';
const AD_HOC = '{ tenant { slug } }';

const dir = mkdtempSync(join(tmpdir(), 'jarvis-documents-'));
const manifest = join(dir, 'persisted-documents.json');
// Signing up is one of the trusted documents, as a first-party frontend's would be.
writeFileSync(manifest, JSON.stringify(Object.fromEntries([TENANT_NAME, KNOWLEDGE_BASE, CREATE_TENANT].map((text) => [sha256(text), text]))));
after(() => rmSync(dir, { recursive: true, force: true }));

async function post(stack: TestStack, caller: Member, body: Record<string, unknown>) {
  const response = await fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...caller.headers }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] } };
}

async function get(stack: TestStack, caller: Member, params: Record<string, string>) {
  const response = await fetch(`${stack.gatewayUrl}?${new URLSearchParams(params)}`, { headers: caller.headers });
  return { status: response.status, body: (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] } };
}

const codeOf = (answer: { body: { errors?: { extensions?: { code?: string } }[] } }) => answer.body.errors?.[0]?.extensions?.code;

describe('trusted documents only', () => {
  let stack: TestStack;
  let owner: Member;
  before(async () => {
    stack = await startTestStack(pglite, { AUTH_DEV_LOGIN: 'true', PERSISTED_DOCUMENTS_PATH: manifest, TRUSTED_DOCUMENTS_ONLY: 'true' });
    owner = await signUp(stack, 'trusted', { name: 'Trusted Ltd' });
  });
  after(() => stack?.close());

  test('a trusted document runs by its documentId or persistedQuery hash, over POST and GET', async () => {
    const expected = { data: { tenant: { name: 'Trusted Ltd' } } };
    assert.deepEqual((await post(stack, owner, { documentId: sha256(TENANT_NAME) })).body, expected);
    assert.deepEqual((await post(stack, owner, { documentId: `sha256:${sha256(TENANT_NAME)}` })).body, expected);
    assert.deepEqual((await post(stack, owner, { extensions: { persistedQuery: { version: 1, sha256Hash: sha256(TENANT_NAME) } } })).body, expected);
    assert.deepEqual((await get(stack, owner, { documentId: sha256(TENANT_NAME) })).body, expected);
    const missing = await get(stack, owner, { documentId: sha256(KNOWLEDGE_BASE), variables: JSON.stringify({ id: '00000000-0000-4000-8000-000000000000' }) });
    assert.deepEqual(missing.body, { data: { knowledgeBase: null } });
    assert.deepEqual((await post(stack, owner, { query: TENANT_NAME })).body, expected, "a trusted document's exact text runs too");
  });

  test('anything else is refused with a clear code, before it runs', async () => {
    const adHoc = await post(stack, owner, { query: AD_HOC });
    assert.equal(adHoc.status, 400);
    assert.equal(codeOf(adHoc), 'QUERY_NOT_IN_SAFELIST');
    assert.equal(codeOf(await get(stack, owner, { query: AD_HOC })), 'QUERY_NOT_IN_SAFELIST');
    const unknown = await post(stack, owner, { documentId: sha256(AD_HOC) });
    assert.equal(unknown.status, 400);
    assert.equal(codeOf(unknown), 'PERSISTED_QUERY_NOT_IN_LIST');
    const registering = await post(stack, owner, { query: AD_HOC, extensions: { persistedQuery: { version: 1, sha256Hash: sha256(AD_HOC) } } });
    assert.equal(codeOf(registering), 'PERSISTED_QUERY_NOT_IN_LIST', 'no automatic persisted query can be registered');
    const mismatched = await post(stack, owner, { documentId: sha256(TENANT_NAME), query: AD_HOC });
    assert.equal(codeOf(mismatched), 'BAD_USER_INPUT');
  });

  test('over WebSocket, operations name trusted documents by hash; others are refused', async () => {
    const client = createClient({ url: stack.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: owner.headers.authorization }, retryAttempts: 0 });
    try {
      const run = async (payload: { query: string; extensions?: Record<string, unknown> }) => {
        for await (const result of client.iterate(payload)) return result;
        return undefined;
      };
      assert.deepEqual(await run({ query: '', extensions: { persistedQuery: { version: 1, sha256Hash: sha256(TENANT_NAME) } } }), { data: { tenant: { name: 'Trusted Ltd' } } });
      await assert.rejects(run({ query: AD_HOC }), (errors: { extensions?: { code?: string } }[]) => errors[0]?.extensions?.code === 'QUERY_NOT_IN_SAFELIST');
    } finally {
      await client.dispose();
    }
  });
});

describe('automatic persisted queries, trusted documents off', () => {
  let stack: TestStack;
  let owner: Member;
  before(async () => {
    stack = await startTestStack(pglite, { AUTH_DEV_LOGIN: 'true', PERSISTED_DOCUMENTS_PATH: manifest });
    owner = await signUp(stack, 'apq', { name: 'Persisting Ltd' });
  });
  after(() => stack?.close());

  test('a hash alone is first not found, then found once sent with its text; ad-hoc queries and trusted ids run', async () => {
    const persistedQuery = { version: 1, sha256Hash: sha256(AD_HOC) };
    assert.equal(codeOf(await post(stack, owner, { extensions: { persistedQuery } })), 'PERSISTED_QUERY_NOT_FOUND');
    assert.ok((await post(stack, owner, { query: AD_HOC, extensions: { persistedQuery } })).body.data);
    assert.match(JSON.stringify((await post(stack, owner, { extensions: { persistedQuery } })).body), /"slug":"apq-/);
    assert.match(JSON.stringify((await post(stack, owner, { query: AD_HOC })).body), /"slug":"apq-/);
    assert.deepEqual((await post(stack, owner, { documentId: sha256(TENANT_NAME) })).body, { data: { tenant: { name: 'Persisting Ltd' } } });
    assert.equal(codeOf(await post(stack, owner, { documentId: sha256('query Other { me { email } }') })), 'PERSISTED_QUERY_NOT_IN_LIST');
  });
});
