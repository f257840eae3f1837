/** The first-run demo data, created through the public API so it is exactly what a client could make. */
import { graphql } from '@jarvis/platform';

export const DEMO_SLUG = 'demo';

export const EXAMPLE_QUERY = `query Tenant($id: ID!) {
  tenant(id: $id) {
    name
    users { name email }
    knowledgeBases { name description }
    conversations { title createdBy { name } }
    usage { from to totals { metric quantity } }
  }
}`;

/** Creates the demo tenant unless it exists; returns its id either way. */
export async function seedDemo(gatewayUrl: string): Promise<{ tenantId: string; created: boolean }> {
  const found = await graphql<{ tenantBySlug: { id: string } | null }>(
    gatewayUrl,
    `query($slug: String!) { tenantBySlug(slug: $slug) { id } }`,
    { slug: DEMO_SLUG },
  );
  if (found.tenantBySlug) return { tenantId: found.tenantBySlug.id, created: false };

  const { createTenant } = await graphql<{ createTenant: { tenant: { id: string }; owner: { id: string } } }>(
    gatewayUrl,
    `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } owner { id } } }`,
    { input: { name: 'Demo Inc.', slug: DEMO_SLUG, plan: 'TEAM', owner: { email: 'owner@demo.test', name: 'Dana Demo' } } },
  );
  const tenantId = createTenant.tenant.id;
  await graphql(
    gatewayUrl,
    `mutation($kb: CreateKnowledgeBaseInput!, $conversation: CreateConversationInput!, $usage: RecordUsageInput!) {
      createKnowledgeBase(input: $kb) { id }
      createConversation(input: $conversation) { id }
      recordUsage(input: $usage) { id }
    }`,
    {
      kb: { tenantId, name: 'Employee handbook', description: 'Policies, benefits and how we work' },
      conversation: { tenantId, title: 'Welcome to Jarvis', createdById: createTenant.owner.id },
      usage: { tenantId, metric: 'REQUESTS', quantity: 1, idempotencyKey: 'demo-seed' },
    },
  );
  return { tenantId, created: true };
}
