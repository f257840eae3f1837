/**
 * The tenants of the isolation matrix: each populated through the API with data in every subgraph (members, a
 * group, a role, an API key, an invitation, a knowledge base with a READY document holding a secret, a
 * conversation, an answer quoting the secret, recorded usage, a published workflow definition named after the
 * secret), what of it is secret from the others, and the ordered pairs of attacker and victim.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { waitFor } from '@jarvis/platform/testing';
import { ending, type answers } from './answers.ts';
import { addMember, as, serviceKey, signUp, type Member, type TestStack } from './helpers.ts';

type Answers = ReturnType<typeof answers>;

const EVERYTHING = `{
  tenant {
    id name slug isolation
    users { id email roles groups { id name } permissions }
    groups { id name members { id } roles }
    roles { name permissions }
    serviceAccounts { id name roles apiKeys { id name scopes revokedAt } }
    invitations { id email role }
    knowledgeBases { id name }
    conversations { id title createdBy { id email } }
    usage { totals { metric quantity } meters { meter quantity } }
    quota { tokensToday memberAllowances { user { id } } }
    definitions { id name versions { number source } labels { name version { number } history { action toVersion } } runs { id status input } }
    runs { id status input steps { name status } }
  }
}`;

export interface Holdings {
  label: string;
  member: Member;
  memberId: string;
  groupId: string;
  serviceAccountId: string;
  keyId: string;
  keySecret: string;
  knowledgeBaseId: string;
  conversationId: string;
  /** A published workflow definition named after `secret`. */
  definitionId: string;
  /** A run of it, given `secret` as input, WAITING for an approval. */
  runId: string;
  /** A READY document of the knowledge base, which holds `secret`. */
  documentId: string;
  /** An answer quoting the document, DONE. */
  answerId: string;
  secret: string;
}

export const VAULT_QUESTION = 'What is the vault code?';
const vaultDocument = (label: string, secret: string) => `# Vault\n\nThe vault code of ${label} is ${secret}.\n`;

export async function populate(stack: TestStack, chat: Answers, label: string, isolation: 'SHARED' | 'DEDICATED'): Promise<Holdings> {
  const owner = await signUp(stack, label, { isolation, name: `Tenant ${label}` });
  const colleague = await addMember(stack, owner, `colleague@${owner.slug}.test`, 'member');
  await as(stack, owner, `mutation($input: InviteUserInput!) { inviteUser(input: $input) { token } }`, {
    input: { email: `invitee@${owner.slug}.test`, role: 'viewer' },
  });
  await as(stack, owner, `mutation { createRole(input: { name: "auditor", permissions: ["usage:read", "kb:read"] }) { name } }`);
  const { createGroup } = await as<{ createGroup: { id: string } }>(stack, owner, `mutation { createGroup(input: { name: "staff" }) { id } }`);
  await as(stack, owner, `mutation($g: ID!, $u: ID!) {
      addGroupMember(groupId: $g, userId: $u) { id }
      assignRole(input: { role: "auditor", groupId: $g }) { role }
    }`, { g: createGroup.id, u: colleague.userId });
  const key = await serviceKey(stack, owner, { roles: ['member'], scopes: ['usage:write'] });
  const { createKnowledgeBase } = await as<{ createKnowledgeBase: { id: string } }>(
    stack,
    colleague,
    `mutation { createKnowledgeBase(input: { name: "Secrets of ${label}" }) { id } }`,
  );
  // Conversations are their starter's: the owner's is in the owner's view.
  const { createConversation } = await as<{ createConversation: { id: string } }>(
    stack,
    owner,
    `mutation { createConversation(input: { title: "Talk of ${label}" }) { id } }`,
  );
  await as(stack, key, `mutation { recordUsage(input: { meter: "crm.sync_calls", quantity: 7, idempotencyKey: "${label}" }) { id } }`);
  const secret = `zq${randomBytes(6).toString('hex')}`;
  const definitionId = await publishedWorkflow(stack, owner, `flow-${secret}`);
  const runId = await waitingRun(stack, owner, definitionId, secret);
  const documentId = await addDocument(stack, owner, createKnowledgeBase.id, `Vault of ${label}`, vaultDocument(label, secret));
  await settledReady(stack, owner, documentId);
  const answer = await chat.ask(owner, VAULT_QUESTION, [createKnowledgeBase.id]);
  assert.equal(ending(answer.events).type, 'DONE', JSON.stringify(answer.events));
  assert.match(answer.events.map((event) => event.delta ?? '').join(''), new RegExp(secret), 'the answer quotes the secret');
  return {
    label,
    member: owner,
    memberId: colleague.userId,
    groupId: createGroup.id,
    serviceAccountId: key.serviceAccountId,
    keyId: key.keyId,
    keySecret: key.secret,
    knowledgeBaseId: createKnowledgeBase.id,
    conversationId: createConversation.id,
    definitionId,
    runId,
    documentId,
    answerId: answer.id,
    secret,
  };
}

const workflowSource = (name: string) =>
  `document:\n  dsl: '1.0.0'\n  namespace: isolation\n  name: ${name}\n  version: '1.0.0'\ndo:\n  - mark:\n      set:\n        done: true\n  - approval:\n      listen:\n        to:\n          one:\n            with:\n              type: jarvis.approval\n`;

async function waitingRun(stack: TestStack, owner: Member, definitionId: string, secret: string): Promise<string> {
  const { startRun } = await as<{ startRun: { id: string } }>(stack, owner, `mutation($input: StartRunInput!) { startRun(input: $input) { id } }`, {
    input: { definitionId, input: { secret } },
  });
  await waitFor(
    async () => (await as<{ run: { status: string } }>(stack, owner, `query($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status,
    `run ${startRun.id} to wait for its approval`,
    { until: (status) => status === 'WAITING', timeoutMs: 30_000, intervalMs: 50 },
  );
  return startRun.id;
}

async function publishedWorkflow(stack: TestStack, owner: Member, name: string): Promise<string> {
  const { createDefinition } = await as<{ createDefinition: { id: string } }>(
    stack,
    owner,
    `mutation($input: CreateDefinitionInput!) { createDefinition(input: $input) { id } }`,
    { input: { name, kind: 'WORKFLOW', source: workflowSource(name) } },
  );
  await as(stack, owner, `mutation($id: ID!) { publishDefinition(input: { definitionId: $id, version: 1 }) { name } }`, { id: createDefinition.id });
  return createDefinition.id;
}

export const addDocument = async (stack: TestStack, caller: Member, knowledgeBaseId: string, title: string, content: string) =>
  (
    await as<{ addDocument: { id: string } }>(stack, caller, `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`, {
      input: { knowledgeBaseId, title, content, mediaType: 'text/markdown' },
    })
  ).addDocument.id;

const settledReady = (stack: TestStack, caller: Member, id: string) =>
  waitFor(
    async () => (await as<{ document: { status: string } }>(stack, caller, `query($id: ID!) { document(id: $id) { status } }`, { id })).document.status,
    `document ${id} to become READY`,
    { until: (status) => status === 'READY', timeoutMs: 30_000, intervalMs: 50 },
  );

export const snapshot = async (stack: TestStack, holdings: Holdings) => (await as<{ tenant: unknown }>(stack, holdings.member, EVERYTHING)).tenant;

export const pairs = () =>
  (['A', 'B', 'D'] as const).flatMap((x) => (['A', 'B', 'D'] as const).filter((y) => y !== x).map((y) => [x, y] as const));

/** Every id and name of `victim` that must never appear in what `attacker` sees. */
export function secretsOf(victim: Holdings): string[] {
  const v = victim;
  return [v.member.tenantId, v.member.userId, v.memberId, v.groupId, v.serviceAccountId, v.keyId, v.knowledgeBaseId, v.conversationId, v.member.slug, v.documentId, v.answerId, v.definitionId, v.runId, v.secret];
}

/** What of `victim` must not reach an attacker who named `named` (ids the attacker sent may come back in an error). */
export const forbiddenFor = (victim: Holdings, named: Record<string, unknown>) => {
  const sent = JSON.stringify(named);
  return [...secretsOf(victim), `Vault of ${victim.label}`, `Secrets of ${victim.label}`].filter((secret) => !sent.includes(secret));
};
