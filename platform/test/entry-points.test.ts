/**
 * The entry points a service without a database may use (the gateway's) load none of the packages only subgraphs
 * need. They are imported in a child process whose module hooks log every module it loads
 * (fixtures/import-entries.ts): a static `import`, a dynamic one run while loading, a CommonJS `require` alike.
 * Every entry in package.json is checked but those listed as server-side, so a new entry is checked by default;
 * and so is the gateway itself, which has no database and no broker.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';

const SUBGRAPH_ONLY = ['pg', '@electric-sql/pglite', 'amqplib', 'mercurius', '@apollo/subgraph'];
/** Entries made of those packages, for subgraphs and tests. */
const SERVER_SIDE = new Set(['./db', './notifications', './bus', './outbox', './quota-overrides', './subgraph', './testing']);

const PLATFORM = new URL('../', import.meta.url);
const { exports } = JSON.parse(readFileSync(new URL('package.json', PLATFORM), 'utf8')) as { exports: Record<string, string> };
const specifier = (entry: string) => `@jarvis/platform${entry.slice(1)}`;
const lightEntries = Object.keys(exports).filter((entry) => !SERVER_SIDE.has(entry)).map(specifier);

interface Loaded {
  url: string;
  importer: string | undefined;
  /** The import under way when it was loaded, or `require cache`. */
  during: string;
}

async function modulesLoadedBy(specifiers: string[]): Promise<Loaded[]> {
  const log = join(mkdtempSync(join(tmpdir(), 'entry-points-')), 'modules.log');
  const child = fileURLToPath(new URL('test/fixtures/import-entries.ts', PLATFORM));
  await promisify(execFile)(process.execPath, ['--import', 'tsx', child, log, ...specifiers], { cwd: fileURLToPath(PLATFORM) });
  let during = '';
  return readFileSync(log, 'utf8').split('\n').filter(Boolean).flatMap((line) => {
    if (line.startsWith('# ')) {
      during = line.slice(2);
      return [];
    }
    const [url, importer] = line.split(' ') as [string, string | undefined];
    return [{ url, importer: importer || undefined, during }];
  });
}

const packageOf = (url: string) => SUBGRAPH_ONLY.find((name) => url.includes(`/node_modules/${name}/`));

/** How `url` was first reached: `platform/src/x.ts → node_modules/pg/…`. */
function importPath(loaded: Loaded[], url: string): string {
  const importerOf = new Map<string, string>();
  for (const m of loaded) if (m.importer && !importerOf.has(m.url)) importerOf.set(m.url, m.importer);
  const steps = [url];
  for (let at = importerOf.get(url); at && !steps.includes(at); at = importerOf.get(at)) steps.unshift(at);
  return steps.map((step) => step.replace(/^file:\/\/.*?\/(platform|node_modules)\//, '$1/')).join(' → ');
}

/** Each of those packages that was loaded, with the import that loaded it first and how it got there. */
function subgraphOnlyPackages(loaded: Loaded[]): string[] {
  const found = new Map<string, string>();
  for (const { url, during } of loaded) {
    const name = packageOf(url);
    if (name && !found.has(name)) found.set(name, `${name}, loaded by ${during}: ${importPath(loaded, url)}`);
  }
  return [...found.values()];
}

test('no entry point a service without a database may use loads pg, PGlite, amqplib, mercurius or @apollo/subgraph', async () => {
  assert.ok(lightEntries.includes('@jarvis/platform/http'));
  assert.deepEqual(subgraphOnlyPackages(await modulesLoadedBy(lightEntries)), []);
});

test('the gateway loads none of them either', async () => {
  assert.deepEqual(subgraphOnlyPackages(await modulesLoadedBy(['@jarvis/gateway'])), []);
});

test('the log sees each of those packages where the subgraphs load them', async () => {
  const loaded = await modulesLoadedBy(['@jarvis/platform/db', '@jarvis/platform/bus', '@jarvis/platform/subgraph']);
  assert.deepEqual(subgraphOnlyPackages(loaded).map((line) => line.split(',')[0]).sort(), [...SUBGRAPH_ONLY].sort());
});
