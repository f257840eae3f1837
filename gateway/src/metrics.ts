/** The gateway's own metric families, beside the GraphQL ones every service has. */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, type Registry } from '@jarvis/platform/metrics';

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

export function createGatewayMetrics(registry: Registry) {
  return {
    subgraphFetch: new Histogram({
      name: 'jarvis_gateway_subgraph_fetch_duration_seconds',
      help: "Subgraph fetches: time until the subgraph's response headers, by subgraph and outcome",
      labelNames: ['subgraph', 'outcome'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    websocketConnections: new Gauge({ name: 'jarvis_gateway_websocket_connections', help: 'Acknowledged graphql-ws connections', registers: [registry] }),
    activeSubscriptions: new Gauge({ name: 'jarvis_gateway_active_subscriptions', help: 'Subscriptions being served', registers: [registry] }),
    policySteps: new Counter({
      name: 'jarvis_gateway_policy_steps_total',
      help: "Gateway policies' steps, by policy, stage (admit, document, operation) and outcome",
      labelNames: ['policy', 'stage', 'outcome'] as const,
      registers: [registry],
    }),
    documentsValidated: new Counter({
      name: 'jarvis_gateway_documents_validated_total',
      help: 'Documents parsed and validated (kept afterwards: a document seen again is neither)',
      registers: [registry],
    }),
  };
}
