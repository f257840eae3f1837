/** The routes every service serves beside its API, open to anyone who reaches its port: health and metrics. */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** `/healthz`: the process is alive. `/readyz`: its dependencies answer, so it may take traffic. */
export function registerHealth(app: FastifyInstance, checkReady: () => Promise<void>) {
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Probes ask often (a launcher every 100 ms while the services start): say so when the answer changes.
  let lastProblem: string | undefined;
  app.get('/readyz', async (_request, reply) => {
    try {
      await checkReady();
      if (lastProblem !== undefined) app.log.info('ready');
      lastProblem = undefined;
      return { status: 'ready' };
    } catch (error) {
      const problem = (error as Error).message;
      if (problem !== lastProblem) app.log.warn({ err: error }, 'not ready');
      lastProblem = problem;
      return reply.code(503).send({ status: 'unavailable' });
    }
  });
}

/** `GET /metrics` in Prometheus's text format. */
export function registerMetricsRoute(app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
