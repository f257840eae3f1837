/**
 * `npm test` (after the type check): every `*.test.ts` under platform, gateway, subgraphs and test/, run by
 * node:test through tsx, after the web console's component tests (`*.test.tsx` under web/src) by Vitest in web/.
 * Arguments narrow the run to files whose path contains one of them. Exits non-zero when either run fails.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOTS = ['platform/test', 'gateway/test', 'subgraphs', 'test'];

/**
 * A wait that never ends fails the run instead of hanging it. 180 s for one test: the slowest measured here takes
 * 42 s (test/browser.e2e.test.ts, trusted documents), npm start's 34 s. Node 20's runner applies --test-timeout to
 * each file as a whole, not to each test (measured on 20.20), so there it bounds a file, whose slowest take minutes.
 */
const TEST_TIMEOUT_MS = Number(process.versions.node.split('.')[0]) >= 22 ? 180_000 : 900_000;
/** The web console: its component tests run with web/vitest.config.ts (jsdom), from web/. */
const WEB = 'web';

function findTests(dir: string, suffix = '.test.ts'): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : findTests(path, suffix);
    return entry.name.endsWith(suffix) ? [path] : [];
  });
}

const filters = process.argv.slice(2);
const selected = (file: string) => filters.length === 0 || filters.some((f) => file.includes(f));
const files = ROOTS.flatMap((root) => findTests(root))
  .filter(selected)
  .sort();
const webFiles = findTests(join(WEB, 'src'), '.test.tsx').filter(selected).sort();
if (files.length === 0 && webFiles.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

// The web tests first, so that node:test's summary closes the run's output.
let status = 0;
if (webFiles.length > 0) {
  const vitest = resolve('node_modules', 'vitest', 'vitest.mjs');
  status = spawnSync(process.execPath, [vitest, 'run', ...webFiles.map((file) => relative(WEB, file))], { cwd: WEB, stdio: 'inherit' }).status ?? 1;
}
if (files.length > 0) {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', `--test-timeout=${TEST_TIMEOUT_MS}`, ...files],
    { stdio: 'inherit' },
  );
  if (status === 0) status = result.status ?? 1;
}
process.exit(status);
