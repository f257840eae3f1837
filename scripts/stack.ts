/** The whole platform — four subgraphs and the gateway — started in this process. */
import { chatSubgraph } from '@jarvis/chat';
import { createGatewayServer } from '@jarvis/gateway';
import { knowledgeSubgraph } from '@jarvis/knowledge';
import {
  createSubgraphServer,
  servicePort,
  type Config,
  type RunningService,
  type ServiceName,
  type SubgraphDefinition,
} from '@jarvis/platform';
import { tenancySubgraph } from '@jarvis/tenancy';
import { usageSubgraph } from '@jarvis/usage';

export const SUBGRAPH_DEFINITIONS: SubgraphDefinition<any>[] = [tenancySubgraph, knowledgeSubgraph, chatSubgraph, usageSubgraph];

/** Starts one service on its configured port (0 picks a free one). */
export async function startService(name: ServiceName, config: Config, port = servicePort(config, name)) {
  if (name === 'gateway') return (await createGatewayServer(config)).start(port);
  const definition = SUBGRAPH_DEFINITIONS.find((d) => d.name === name)!;
  return (await createSubgraphServer(definition, config)).start(port);
}

export interface Stack {
  gatewayUrl: string;
  subgraphUrls: Record<string, string>;
  close(): Promise<void>;
}

/** Subgraphs first (each on a free port when `freePorts`), then a gateway pointed at them. */
export async function startStack(config: Config, { freePorts = false } = {}): Promise<Stack> {
  const started: RunningService[] = [];
  // The gateway first, so its in-flight requests can still reach the subgraphs; then the subgraphs.
  const close = async () => {
    const gateway = started.filter((service) => service.name === 'gateway');
    await Promise.allSettled(gateway.map((service) => service.close()));
    await Promise.allSettled(started.filter((service) => !gateway.includes(service)).map((service) => service.close()));
  };
  try {
    const subgraphs = await Promise.all(
      SUBGRAPH_DEFINITIONS.map(async (definition) => {
        const service = await startService(definition.name, config, freePorts ? 0 : undefined);
        started.push(service);
        return service;
      }),
    );
    const subgraphUrls = Object.fromEntries(subgraphs.map((s) => [s.name, s.url]));
    const gateway = await startService('gateway', { ...config, SUBGRAPH_URLS: subgraphUrls }, freePorts ? 0 : undefined);
    started.push(gateway);
    return { gatewayUrl: gateway.url, subgraphUrls, close };
  } catch (error) {
    await close();
    throw error;
  }
}
