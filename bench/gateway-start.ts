/**
 * The gateway's cold start: from spawning `scripts/serve.ts gateway` to its first answer on /healthz, and what it
 * loads on the way (modules, packages, and whether any database or broker client is among them). The subgraphs
 * need not run: the gateway plans from the supergraph file and only calls them when asked.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@jarvis/platform/testing';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LOG_RESOLUTIONS = fileURLToPath(new URL('../platform/test/fixtures/log-resolutions.mjs', import.meta.url));
/** Clients the gateway has no use for: it has no database and no broker. */
const HEAVY = ['@electric-sql/pglite', 'pg', 'amqplib', 'mercurius', '@apollo/subgraph'];

async function coldStart(censusFile: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', LOG_RESOLUTIONS, '--import', 'tsx', 'scripts/serve.ts', 'gateway'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', GATEWAY_PORT: String(port), INTERNAL_AUTH_SECRET: 'x'.repeat(43), MODULE_LOG: censusFile },
    stdio: 'ignore',
  });
  try {
    for (;;) {
      if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) return performance.now() - started;
      if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}`);
      await sleep(10);
    }
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

function packagesIn(censusFile: string) {
  const urls = new Set(readFileSync(censusFile, 'utf8').split('\n').map((line) => line.split(' ')[0]!).filter((url) => url.startsWith('file:')));
  const packages = new Set([...urls].flatMap((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.slice(1) ?? []));
  return { modules: urls.size, packages };
}

const dir = mkdtempSync(join(tmpdir(), 'jarvis-gateway-start-'));
try {
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) times.push(await coldStart(join(dir, `census-${run}`)));
  const { modules, packages } = packagesIn(join(dir, 'census-0'));
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  console.log(`\n| gateway cold start (${RUNS} runs) | value |`);
  console.log('|---|---:|');
  console.log(`| spawn → first /healthz answer, median | ${(median / 1000).toFixed(2)} s |`);
  console.log(`| fastest / slowest | ${(times[0]! / 1000).toFixed(2)} s / ${(times.at(-1)! / 1000).toFixed(2)} s |`);
  console.log(`| modules resolved | ${modules} |`);
  console.log(`| packages loaded | ${packages.size} |`);
  console.log(`| database or broker clients among them | ${HEAVY.filter((name) => packages.has(name)).join(', ') || 'none'} |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
