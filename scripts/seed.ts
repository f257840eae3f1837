/** The first-run demo data, created through the public API so it is exactly what a client could make. */
import { bearer, devLogin, graphql, postGraphQL, type Plan } from '@jarvis/platform';

export const DEMO_SLUG = 'demo';
export const DEMO_OWNER = 'owner@demo.test';

/** The signed-in caller's tenant, across all four subgraphs. */
export const EXAMPLE_QUERY = `{
  tenant {
    name
    users { name email roles }
    knowledgeBases { name description documents { title status chunkCount } }
    conversations { title createdBy { name } }
    usage { from to totals { metric quantity } }
  }
}`;

/** Passages of the demo handbook, with their citations. */
export const SEARCH_QUERY = `{
  search(query: "how many vacation days", topK: 2) { score text sectionPath document { title } }
}`;

export const ASK_MUTATION = `mutation {
  ask(input: { question: "How many vacation days do I get?" }) { answer { id } }
}`;

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
 * Creates the demo tenant unless it exists, signed in as its owner through dev-login; returns whether it was
 * created and a token for the owner.
 */
export async function seedDemo(gatewayUrl: string, tokenUrl: string, plan: Plan = 'TEAM'): Promise<{ created: boolean; token: string }> {
  const { body } = await postGraphQL(
    gatewayUrl,
    `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }`,
    { input: { name: 'Demo Inc.', slug: DEMO_SLUG, plan, owner: { email: DEMO_OWNER, name: 'Dana Demo' } } },
  );
  const created = !body.errors?.length;
  if (!created && body.errors?.[0]?.extensions?.code !== 'CONFLICT') {
    throw new Error(`seeding the demo tenant failed: ${JSON.stringify(body.errors)}`);
  }
  const token = await devLogin(tokenUrl, DEMO_SLUG, DEMO_OWNER);
  if (created) {
    const { createKnowledgeBase } = await graphql<{ createKnowledgeBase: { id: string } }>(
      gatewayUrl,
      `mutation {
        createKnowledgeBase(input: { name: "Employee handbook", description: "Policies, benefits and how we work" }) { id }
        createConversation(input: { title: "Welcome to Jarvis" }) { id }
      }`,
      {},
      bearer(token),
    );
    await graphql(
      gatewayUrl,
      `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`,
      { input: { knowledgeBaseId: createKnowledgeBase.id, title: 'Employee handbook', content: HANDBOOK } },
      bearer(token),
    );
  }
  return { created, token };
}
