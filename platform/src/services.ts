/** The four subgraphs, in composition order, with the port each listens on by default. */
export const SUBGRAPHS = [
  { name: 'tenancy', defaultPort: 4001 },
  { name: 'knowledge', defaultPort: 4002 },
  { name: 'chat', defaultPort: 4003 },
  { name: 'usage', defaultPort: 4004 },
] as const;

export type SubgraphName = (typeof SUBGRAPHS)[number]['name'];
export type ServiceName = SubgraphName | 'gateway';

export const GATEWAY_DEFAULT_PORT = 4000;

export function defaultPort(name: ServiceName): number {
  return name === 'gateway' ? GATEWAY_DEFAULT_PORT : SUBGRAPHS.find((s) => s.name === name)!.defaultPort;
}

export function defaultSubgraphUrl(name: SubgraphName, host = 'localhost'): string {
  return `http://${host}:${defaultPort(name)}/graphql`;
}
