/**
 * The first-run demo data, created through the public API so it is exactly what a client could make — with the
 * console's own persisted documents, named by hash, so seeding works when the gateway runs trusted documents only.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { bearer, dataOf, devLogin, postGraphQLRequest } from '@jarvis/platform/client';
import type { Plan } from '@jarvis/platform/contracts';
import {
  AddTextDocumentDocument,
  CreateConversationDocument,
  CreateDefinitionDocument,
  CreateKnowledgeBaseDocument,
  CreateTenantDocument,
  PublishDefinitionDocument,
} from '../web/src/gql/graphql.ts';
import { DEMO_AGENT_NAME, DEMO_WORKFLOW, DEMO_WORKFLOW_NAME, demoAgent } from './demo-definitions.ts';

export const DEMO_SLUG = 'demo';
export const DEMO_OWNER = 'owner@demo.test';

/** The signed-in caller's tenant, across all five subgraphs. */
export const EXAMPLE_QUERY = `{
  tenant {
    name
    users { name email roles }
    knowledgeBases { name description documents { title status chunkCount } }
    conversations { title createdBy { name } }
    usage { from to totals { metric quantity } }
    definitions { name kind }
  }
}`;

/** Passages of the demo handbook, with their citations. */
export const SEARCH_QUERY = `{
  search(query: "how many vacation days", topK: 2) { score text sectionPath document { title } }
}`;

export const ASK_MUTATION = `mutation {
  ask(input: { question: "How many vacation days do I get?" }) { answer { id } }
}`;

/** Runs the demo workflow: it branches, loops, searches twice at once, asks the model and waits for approval. */
export const START_RUN_MUTATION = `mutation {
  startRun(input: { name: "${DEMO_WORKFLOW_NAME}", input: { topics: ["vacation days", "travel"] } }) { id status }
}`;

/** Followed over WebSocket (graphql-ws) with the run's id. */
export const RUN_EVENTS_SUBSCRIPTION = `subscription($id: ID!) { runEvents(runId: $id) { seq type step name output error { code message } } }`;

export const APPROVE_RUN_MUTATION = `mutation($id: ID!) { approveRun(input: { runId: $id, comment: "Looks right" }) { id } }`;

export const RUN_QUERY = `query($id: ID!) { run(id: $id) { status output steps { number name kind status } promptTokens completionTokens } }`;

/** Followed over WebSocket (graphql-ws) with the answer's id. */
export const ANSWER_SUBSCRIPTION = `subscription($id: ID!) { answerStream(messageId: $id) { seq type delta citations { n title } } }`;

const HANDBOOK = `# Demo Inc. employee handbook

## Time off

Everyone gets 28 vacation days a year, plus public holidays. Unused days carry over until the end of March.

## Travel

Book economy class for flights under six hours. Hotels are booked through the travel desk.

## Equipment

New colleagues receive a laptop on their first day. Report a lost device to security within a day.
`;

/**
 * Creates the demo tenant unless it exists — on `plan`, which only the operator may choose — signed in as its
 * owner through dev-login; returns whether it was created and a token for the owner.
 */
export async function seedDemo(
  gatewayUrl: string,
  tokenUrl: string,
  { operatorToken, plan = 'TEAM' }: { operatorToken: string; plan?: Plan },
): Promise<{ created: boolean; token: string }> {
  const input = { name: 'Demo Inc.', slug: DEMO_SLUG, plan, owner: { email: DEMO_OWNER, name: 'Dana Demo' } };
  const tenant = await send(gatewayUrl, CreateTenantDocument, { input }, bearer(operatorToken));
  const created = !tenant.body.errors?.length;
  if (!created && tenant.body.errors?.[0]?.extensions?.code !== 'CONFLICT') {
    throw new Error(`seeding the demo tenant failed: ${JSON.stringify(tenant.body.errors)}`);
  }
  const token = await devLogin(tokenUrl, DEMO_SLUG, DEMO_OWNER);
  if (created) {
    const owner = bearer(token);
    const { createKnowledgeBase } = dataOf(
      await send(gatewayUrl, CreateKnowledgeBaseDocument, { input: { name: 'Employee handbook', description: 'Policies, benefits and how we work' } }, owner),
    );
    dataOf(await send(gatewayUrl, CreateConversationDocument, { input: { title: 'Welcome to Jarvis' } }, owner));
    dataOf(await send(gatewayUrl, AddTextDocumentDocument, { knowledgeBaseId: createKnowledgeBase!.id, title: 'Employee handbook', content: HANDBOOK }, owner));
    for (const [name, kind, source] of [
      [DEMO_WORKFLOW_NAME, 'WORKFLOW', DEMO_WORKFLOW],
      [DEMO_AGENT_NAME, 'AGENT', demoAgent(createKnowledgeBase!.id)],
    ] as const) {
      const { createDefinition } = dataOf(await send(gatewayUrl, CreateDefinitionDocument, { input: { name, kind, source } }, owner));
      dataOf(await send(gatewayUrl, PublishDefinitionDocument, { input: { definitionId: createDefinition!.id, version: 1, label: 'production' } }, owner));
    }
  }
  return { created, token };
}

/** A generated document sent by its persisted-document hash. */
function send<Result, Variables extends Record<string, unknown>>(
  gatewayUrl: string,
  document: TypedDocumentNode<Result, Variables>,
  variables: Variables,
  headers: Record<string, string> = {},
) {
  const documentId = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  return postGraphQLRequest<Result>(gatewayUrl, { documentId, variables }, headers);
}
