/** Runs one service in this process: `tsx scripts/serve.ts <gateway|tenancy|knowledge|chat|usage>`. */
import { ConfigError, createLogger, loadConfig, type ServiceName } from '@jarvis/platform';
import { startService } from './stack.ts';

const NAMES = ['gateway', 'tenancy', 'knowledge', 'chat', 'usage'];
const name = process.argv[2] as ServiceName;
if (!NAMES.includes(name)) {
  console.error(`usage: serve.ts <${NAMES.join('|')}>`);
  process.exit(2);
}

try {
  const config = loadConfig();
  const log = createLogger(name, config.LOG_LEVEL);
  const service = await startService(name, config);
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'shutting down');
    const timer = setTimeout(() => {
      log.error('shutdown timed out');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    await service.close();
    clearTimeout(timer);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  // Started by `npm start`: if the launcher dies, do not linger as an orphan holding ports and data.
  process.once('disconnect', () => void stop('launcher exited'));
  process.send?.({ ready: name });
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
