/**
 * The web console's build (web/dist), made when it is missing or older than its sources, so `npm start` on a
 * fresh clone serves the console without a separate step. Vite is a development dependency: where it is not
 * installed (a production image built without it), the console is left out and the API still runs.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('../web/', import.meta.url));
const SOURCES = ['src', 'index.html', 'graphiql.html', 'vite.config.ts', 'package.json'];

/**
 * Builds the console when needed; says what it did, or why there is no console. One build at a time on the
 * machine (a lock directory): `npm start` and test files may ask at once, and the second then finds it built.
 */
export async function ensureConsoleBuilt(web = WEB): Promise<string> {
  if (upToDate(web)) return 'console: web/dist is up to date';
  const release = await lock(join(web, '.dist-build-lock'));
  try {
    return upToDate(web) ? 'console: web/dist is up to date' : await build(web);
  } finally {
    release();
  }
}

function upToDate(web: string): boolean {
  const built = join(web, 'dist', 'index.html');
  return existsSync(built) && statSync(built).mtimeMs >= newestSource(web);
}

/** A lock older than this was left by a build that died. */
const STALE_LOCK_MS = 120_000;

async function lock(path: string): Promise<() => void> {
  for (;;) {
    try {
      mkdirSync(path);
      return () => rmSync(path, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const held = statSync(path, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) rmSync(path, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function build(web: string): Promise<string> {
  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch {
    return 'console: not built (Vite is not installed); the API runs without it';
  }
  const started = performance.now();
  // Vite sets NODE_ENV to production for its build, in this process: the services started after must not inherit it.
  const nodeEnv = process.env.NODE_ENV;
  try {
    const configFile = join(web, 'vite.config.ts');
    await vite.build({ root: web, logLevel: 'warn', configFile: existsSync(configFile) ? configFile : false });
  } catch (error) {
    return `console: the build failed (${(error as Error).message.split('\n')[0]}); the API runs without it`;
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
  return `console: built web/dist in ${((performance.now() - started) / 1000).toFixed(1)}s`;
}

function newestSource(web: string): number {
  return Math.max(...SOURCES.map((name) => join(web, name)).filter(existsSync).map(newestIn));
}

function newestIn(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newestIn(join(path, name))));
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await ensureConsoleBuilt());
