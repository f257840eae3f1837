/** The whole platform — five subgraphs and the gateway — started in this process. */
import type { Bus } from '@jarvis/platform/bus';
import { servicePort, SUBGRAPHS, type Config, type ServiceName, type SubgraphName, trustTenancyIssuer } from '@jarvis/platform/config';
import type { RunningService } from '@jarvis/platform/http';
import { createLogger, type Logger } from '@jarvis/platform/logger';
import type { SubgraphDefinition } from '@jarvis/platform/subgraph';

// Imported on demand: a process that runs one subgraph should not load the gateway or its neighbours.
const SUBGRAPH_DEFINITIONS: Record<SubgraphName, () => Promise<SubgraphDefinition<never>>> = {
  tenancy: async () => (await import('@jarvis/tenancy')).tenancySubgraph as SubgraphDefinition<never>,
  knowledge: async () => (await import('@jarvis/knowledge')).knowledgeSubgraph as SubgraphDefinition<never>,
  chat: async () => (await import('@jarvis/chat')).chatSubgraph as SubgraphDefinition<never>,
  usage: async () => (await import('@jarvis/usage')).usageSubgraph as SubgraphDefinition<never>,
  agents: async () => (await import('@jarvis/agents')).agentsSubgraph as SubgraphDefinition<never>,
};

/** A subgraph's definition, loaded on demand. */
export const subgraphDefinition = (name: SubgraphName) => SUBGRAPH_DEFINITIONS[name]();

/** The bus the subgraphs of one process share, loaded on demand too: the gateway's process never needs amqplib. */
export async function openSharedBus(config: Config, log: Logger): Promise<Bus> {
  const { openConfiguredBus } = await import('@jarvis/platform/bus');
  return openConfiguredBus(config, log);
}

/** Starts one service on its configured port (0 picks a free one); subgraphs of one process share `bus`. */
export async function startService(name: ServiceName, config: Config, port = servicePort(config, name), bus?: Bus) {
  if (name === 'gateway') {
    const { createGatewayServer } = await import('@jarvis/gateway');
    return (await createGatewayServer(config)).start(port);
  }
  const { createSubgraphServer } = await import('@jarvis/platform/subgraph');
  return (await createSubgraphServer(await SUBGRAPH_DEFINITIONS[name](), config, { bus })).start(port);
}

export interface Stack {
  gatewayUrl: string;
  subgraphUrls: Record<string, string>;
  /** The tenancy issuer's OAuth2 token endpoint. */
  tokenUrl: string;
  close(): Promise<void>;
}

/** Subgraphs first (each on a free port when `freePorts`), then a gateway pointed at them. */
export async function startStack(config: Config, { freePorts = false } = {}): Promise<Stack> {
  const started: RunningService[] = [];
  const bus = await openSharedBus(config, createLogger('bus', config.LOG_LEVEL));
  // The gateway first, so its in-flight requests can still reach the subgraphs; then the subgraphs.
  const close = async () => {
    const gateway = started.filter((service) => service.name === 'gateway');
    await Promise.allSettled(gateway.map((service) => service.close()));
    await Promise.allSettled(started.filter((service) => !gateway.includes(service)).map((service) => service.close()));
    await bus.close();
  };
  try {
    // Chat asks knowledge for passages, and agents asks both: each starts once the URLs it needs are known.
    const start = async (names: SubgraphName[], serviceConfig: Config) => {
      // allSettled, not all: when one fails, the others must have finished starting before they can be closed.
      const results = await Promise.allSettled(names.map((name) => startService(name, serviceConfig, freePorts ? 0 : servicePort(config, name), bus)));
      started.push(...results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : [])));
      const failure = results.find((result) => result.status === 'rejected');
      if (failure) throw failure.reason;
    };
    const known = () => ({ ...config.SUBGRAPH_URLS, ...Object.fromEntries(started.map((service) => [service.name, service.url])) });
    await start(SUBGRAPHS.map(({ name }) => name).filter((name) => name !== 'chat' && name !== 'agents'), config);
    await start(['chat'], { ...config, SUBGRAPH_URLS: known() });
    await start(['agents'], { ...config, SUBGRAPH_URLS: known() });
    const subgraphUrls = Object.fromEntries(started.map((s) => [s.name, s.url]));
    const tenancyBase = subgraphUrls.tenancy!.replace(/\/graphql$/, '');
    const gatewayConfig = { ...config, SUBGRAPH_URLS: subgraphUrls, ...trustTenancyIssuer(config, tenancyBase) };
    const gateway = await startService('gateway', gatewayConfig, freePorts ? 0 : undefined);
    started.push(gateway);
    return { gatewayUrl: gateway.url, subgraphUrls, tokenUrl: `${tenancyBase}/oauth/token`, close };
  } catch (error) {
    await close();
    throw error;
  }
}
