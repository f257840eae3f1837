/**
 * Start-up time of `npm start`: from the command to the first successful cross-subgraph query, for a first
 * run on a new machine (no cached database template), a first run with a new data directory, and a restart.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bearer, devLogin, postGraphQL } from '@jarvis/platform/client';
import { DEMO_OWNER, DEMO_SLUG } from '../scripts/seed.ts';

const GATEWAY = 'http://127.0.0.1:4000/graphql';
const TOKEN_URL = 'http://127.0.0.1:4001/oauth/token';
const CROSS_SUBGRAPH = `{
  tenant { name knowledgeBases { name } conversations { title createdBy { name } } usage { totals { quantity } } }
}`;

/** Whether the demo owner can sign in and the cross-subgraph query answers with the demo data yet. */
async function demoAnswered(): Promise<boolean> {
  const token = await devLogin(TOKEN_URL, DEMO_SLUG, DEMO_OWNER);
  const answer = await postGraphQL<{ tenant: { knowledgeBases: unknown[] } | null }>(GATEWAY, CROSS_SUBGRAPH, {}, bearer(token));
  return Boolean(answer.body.data?.tenant?.knowledgeBases.length);
}

async function timeToFirstQuery(dataDir: string): Promise<number> {
  const started = performance.now();
  const child = spawn('npm', ['start'], {
    env: { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdio: 'ignore',
    detached: true, // its own process group, so SIGINT reaches every process as Ctrl-C does
  });
  try {
    for (;;) {
      if (await demoAnswered().catch(() => false)) return performance.now() - started;
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}`);
      await sleep(50);
    }
  } finally {
    process.kill(-child.pid!, 'SIGINT');
    await once(child, 'exit');
  }
}

function forgetDatabaseTemplate() {
  for (const name of readdirSync(tmpdir())) {
    if (name.startsWith('jarvis-pglite-')) rmSync(join(tmpdir(), name), { force: true });
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-cold-'));
try {
  forgetDatabaseTemplate();
  const firstEver = await timeToFirstQuery(join(dataDir, 'a'));
  const newDataDir = await timeToFirstQuery(join(dataDir, 'b'));
  const restart = await timeToFirstQuery(join(dataDir, 'b'));
  console.log('\n| npm start → first cross-subgraph query | seconds |');
  console.log('|---|---:|');
  console.log(`| first run on a new machine (database template built) | ${(firstEver / 1000).toFixed(1)} |`);
  console.log(`| first run, new data directory (seeds the demo tenant) | ${(newDataDir / 1000).toFixed(1)} |`);
  console.log(`| restart on existing data | ${(restart / 1000).toFixed(1)} |`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
