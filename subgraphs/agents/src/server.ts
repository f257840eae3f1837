import { defineSubgraph, type ResourceServices } from '@jarvis/platform/subgraph';
import type { AgentsContext } from './context.ts';
import { DefinitionService } from './definitions/service.ts';
import { LabelService } from './labels/service.ts';
import { resolvers } from './resolvers.ts';
import { openRunEngine } from './runs/engine.ts';
import { runMetrics } from './runs/metrics.ts';
import { RunService, type RunServiceDeps } from './runs/service.ts';
import { openRunSignals } from './runs/signals.ts';

async function openAgentsResources({ db, config, log, outbox, metrics }: ResourceServices): Promise<RunServiceDeps & { close(): Promise<void> }> {
  const signals = await openRunSignals(db, log);
  const engine = await openRunEngine({ db, config, log, outbox, metrics: runMetrics(metrics) }).catch(async (error: unknown) => {
    await signals.close();
    throw error;
  });
  return {
    engine,
    signals,
    async close() {
      await engine.close();
      await signals.close();
    },
  };
}

export const agentsSubgraph = defineSubgraph<AgentsContext, RunServiceDeps>({
  name: 'agents',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  resources: openAgentsResources,
  context: (base, { outbox, resources }) => {
    const definitions = new DefinitionService(base.db, base.principal);
    return {
      ...base,
      definitions,
      labels: new LabelService(base.db, base.principal, outbox, definitions),
      runs: new RunService(base.db, base.principal, resources),
    };
  },
  outbox: true,
});
