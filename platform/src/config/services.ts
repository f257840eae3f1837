/** The five subgraphs, in composition order, with the port each listens on by default. */
export const SUBGRAPHS = [
  { name: 'tenancy', defaultPort: 4001 },
  { name: 'knowledge', defaultPort: 4002 },
  { name: 'chat', defaultPort: 4003 },
  { name: 'usage', defaultPort: 4004 },
  { name: 'agents', defaultPort: 4005 },
] as const;

export type SubgraphName = (typeof SUBGRAPHS)[number]['name'];
export type ServiceName = SubgraphName | 'gateway';

/** Every service a process can run: what scripts/serve.ts accepts. */
export const SERVICE_NAMES: readonly ServiceName[] = ['gateway', ...SUBGRAPHS.map((s) => s.name)];

/** The variable that sets a service's port. */
export const portVariable = (name: ServiceName) => `${name.toUpperCase()}_PORT`;

export const GATEWAY_DEFAULT_PORT = 4000;

export function defaultPort(name: ServiceName): number {
  return name === 'gateway' ? GATEWAY_DEFAULT_PORT : SUBGRAPHS.find((s) => s.name === name)!.defaultPort;
}

export function defaultSubgraphUrl(name: SubgraphName, host = 'localhost'): string {
  return `http://${host}:${defaultPort(name)}/graphql`;
}
