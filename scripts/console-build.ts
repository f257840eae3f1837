/**
 * The web console's build (web/dist), made when it is missing or older than its sources, so `npm start` on a
 * fresh clone serves the console without a separate step. Vite is a development dependency: where it is not
 * installed (a production image built without it), the console is left out and the API still runs.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('../web/', import.meta.url));
const BUILT = join(WEB, 'dist', 'index.html');
const SOURCES = ['src', 'index.html', 'graphiql.html', 'vite.config.ts', 'package.json'];

/** Builds the console when needed; says what it did, or why there is no console. */
export async function ensureConsoleBuilt(): Promise<string> {
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= newestSource()) return 'console: web/dist is up to date';
  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch {
    return 'console: not built (Vite is not installed); the API runs without it';
  }
  const started = performance.now();
  try {
    await vite.build({ root: WEB, logLevel: 'warn', configFile: join(WEB, 'vite.config.ts') });
  } catch (error) {
    return `console: the build failed (${(error as Error).message.split('\n')[0]}); the API runs without it`;
  }
  return `console: built web/dist in ${((performance.now() - started) / 1000).toFixed(1)}s`;
}

function newestSource(): number {
  return Math.max(...SOURCES.map((name) => join(WEB, name)).filter(existsSync).map(newestIn));
}

function newestIn(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newestIn(join(path, name))));
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await ensureConsoleBuilt());
