/**
 * Runs services in this process: `tsx scripts/serve.ts <service> [<service> …]`, each on its own port
 * (gateway, tenancy, knowledge, chat, usage). Containers run one each; `npm start` groups the subgraphs.
 */
import { ConfigError, loadConfig, portVariable, SERVICE_NAMES, servicePort, type ServiceName } from '@jarvis/platform/config';
import { createLogger } from '@jarvis/platform/logger';
import { startTelemetry } from '@jarvis/platform/telemetry';
import { openSharedBus, startService } from './stack.ts';

const names = process.argv.slice(2) as ServiceName[];
if (names.length === 0 || names.some((name) => !SERVICE_NAMES.includes(name))) {
  console.error(`usage: serve.ts <${SERVICE_NAMES.join('|')}> …`);
  process.exit(2);
}

try {
  const config = loadConfig();
  const log = createLogger(names.join('+'), config.LOG_LEVEL);
  // Off unless OTEL_* variables ask for it; before any service, so every span has a provider.
  const telemetry = startTelemetry({ serviceName: `jarvis-${names.join('+')}` });
  // The subgraphs of one process share a bus: in-process events then reach every subgraph here.
  const bus = names.some((name) => name !== 'gateway') ? await openSharedBus(config, log) : undefined;
  let services: Awaited<ReturnType<typeof startService>>[] | undefined;
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'shutting down');
    // Told to stop while still starting: nothing is served yet, so nothing needs draining.
    if (!services) process.exit(0);
    const timer = setTimeout(() => {
      log.error('shutdown timed out');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    await Promise.all(services.map((service) => service.close()));
    await bus?.close();
    await telemetry.shutdown();
    clearTimeout(timer);
    process.exit(0);
  };
  // Listened for before the services start: a launcher that dies meanwhile must not leave an orphan that
  // goes on to hold ports and data once it has started.
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('disconnect', () => void stop('launcher exited'));
  services = await Promise.all(names.map((name) => startService(name, config, undefined, bus)));
} catch (error) {
  console.error(startupProblem(error));
  process.exit(1);
}

/** What a person starting Jarvis needs to read: the cause in one line where we know it, else the error. */
function startupProblem(error: unknown): unknown {
  if (error instanceof ConfigError) return error.message;
  const { code, address, port } = error as { code?: string; address?: string; port?: number };
  if (code === 'EADDRINUSE') {
    const service = names.find((name) => servicePort(loadConfig(), name) === port);
    return `port ${port} on ${address} is in use: stop what holds it, or set ${service ? portVariable(service) : '<SERVICE>_PORT'}`;
  }
  return error;
}
