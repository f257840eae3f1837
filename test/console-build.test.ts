import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureConsoleBuilt } from '../scripts/console-build.ts';

test('the console is built once when missing, and the build leaves NODE_ENV as it was for the services started after it', async () => {
  const web = mkdtempSync(join(tmpdir(), 'jarvis-web-'));
  const nodeEnv = process.env.NODE_ENV;
  try {
    writeFileSync(join(web, 'index.html'), '<!doctype html><html><head><title>t</title></head><body></body></html>\n');
    delete process.env.NODE_ENV;
    assert.match(await ensureConsoleBuilt(web), /built web\/dist/);
    assert.equal(process.env.NODE_ENV, undefined, 'Vite sets NODE_ENV=production for its build; it must not stay set');
    assert.ok(existsSync(join(web, 'dist', 'index.html')));
    assert.match(await ensureConsoleBuilt(web), /up to date/);
  } finally {
    if (nodeEnv !== undefined) process.env.NODE_ENV = nodeEnv;
    rmSync(web, { recursive: true, force: true });
  }
});
