/**
 * Runs services in this process: `tsx scripts/serve.ts <service> [<service> …]`, each on its own port
 * (gateway, tenancy, knowledge, chat, usage). Containers run one each; `npm start` groups the subgraphs.
 */
import { ConfigError, createLogger, loadConfig, type ServiceName } from '@jarvis/platform';
import { startService } from './stack.ts';

const NAMES = ['gateway', 'tenancy', 'knowledge', 'chat', 'usage'];
const names = process.argv.slice(2) as ServiceName[];
if (names.length === 0 || names.some((name) => !NAMES.includes(name))) {
  console.error(`usage: serve.ts <${NAMES.join('|')}> …`);
  process.exit(2);
}

try {
  const config = loadConfig();
  const log = createLogger(names.join('+'), config.LOG_LEVEL);
  const services = await Promise.all(names.map((name) => startService(name, config)));
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'shutting down');
    const timer = setTimeout(() => {
      log.error('shutdown timed out');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    await Promise.all(services.map((service) => service.close()));
    clearTimeout(timer);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  // Started by `npm start`: if the launcher dies, do not linger as an orphan holding ports and data.
  process.once('disconnect', () => void stop('launcher exited'));
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
