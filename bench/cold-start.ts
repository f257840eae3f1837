/**
 * Start-up time of `npm start`: from the command to the first successful cross-subgraph query, for a first
 * run on a new machine (no cached database template), a first run with a new data directory, and a restart.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postGraphQL } from '@jarvis/platform';
import { DEMO_SLUG } from '../scripts/seed.ts';

const GATEWAY = 'http://127.0.0.1:4000/graphql';
const CROSS_SUBGRAPH = `query($slug: String!) {
  tenantBySlug(slug: $slug) { name knowledgeBases { name } conversations { title createdBy { name } } usage { totals { quantity } } }
}`;

async function timeToFirstQuery(dataDir: string): Promise<number> {
  const started = performance.now();
  const child = spawn('npm', ['start'], {
    env: { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdio: 'ignore',
    detached: true, // its own process group, so SIGINT reaches every process as Ctrl-C does
  });
  try {
    for (;;) {
      const answer = await postGraphQL<{ tenantBySlug: { knowledgeBases: unknown[] } | null }>(GATEWAY, CROSS_SUBGRAPH, {
        slug: DEMO_SLUG,
      }).catch(() => undefined);
      if (answer?.body.data?.tenantBySlug?.knowledgeBases.length) return performance.now() - started;
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
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
