/**
 * Workflows in the web console, in a real browser: `npm start` (scripts/start.ts, on free ports and a data
 * directory of its own), then Debian's chromium driven by playwright-core at the printed console address. The
 * demo owner opens a new workflow in the editor, breaks a line and sees the problem inline with its line and
 * column, mends it and sees none; saves, publishes, starts a run, sees it WAITING with the approval banner,
 * approves and sees it DONE. Screenshots go to test-results/browser/ (CHROMIUM_PATH names another browser binary;
 * CI installs Debian's chromium).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freeServicePorts } from '@jarvis/platform/testing';
import { DEMO_OWNER, DEMO_SLUG } from '../scripts/seed.ts';
import { banner, launch, type Launch } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = 'test-results/browser';
// CI installs chromium (.ci/run); elsewhere the suite says why it did not run.
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no browser at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH` : false;

/** A small workflow: its header, an input schema, a `set` task, a `listen` for a jarvis.approval, then the decision. */
const WORKFLOW = `document:
  dsl: '1.0.0'
  namespace: browser
  name: trip-approval
  version: '1.0.0'
input:
  schema:
    format: json
    document:
      type: object
      required: [destination]
      properties:
        destination: { type: string }
do:
  - plan:
      set:
        destination: \${ .destination }
  - approval:
      listen:
        to:
          one:
            with:
              type: jarvis.approval
  - finish:
      set:
        approved: \${ .data.approved }
`;
/** The same with the colon after `name` forgotten (line 4): YAML that cannot be read. */
const BROKEN = WORKFLOW.replace('  name: trip-approval', '  name trip-approval');

describe('workflows in the web console in chromium, on npm start', { skip }, () => {
  let browser: Browser;
  let launched: Launch | undefined;
  let dataDir: string | undefined;

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    if (launched) {
      launched.process.kill('SIGINT');
      await launched.exited;
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function signIn(consoleUrl: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (error) => console.error('console page error:', error));
    await page.goto(consoleUrl);
    assert.equal(await page.getByTestId('signin-tenant').inputValue(), DEMO_SLUG);
    assert.equal(await page.getByTestId('signin-email').inputValue(), DEMO_OWNER);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('tenant-name').filter({ hasText: 'Demo Inc.' }).waitFor();
    return page;
  }

  test('write a workflow with inline problems, save, publish, run, approve and see it DONE', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'jarvis-browser-workflows-'));
    launched = launch({ ...(await freeServicePorts()), DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
    const { consoleUrl } = await banner(launched);
    const page = await signIn(consoleUrl);
    const panel = page.getByTestId('workflows-panel');

    await panel.getByTestId('definition-new-workflow').click();
    const source = panel.getByRole('textbox', { name: "The workflow's YAML" });
    assert.match(await source.inputValue(), /type: jarvis\.approval/, 'a new workflow starts from the example');
    await panel.getByRole('textbox', { name: 'Name' }).fill('trip-approval');

    // A broken line: the problem is listed with its line and column, and the line is marked.
    await source.fill(BROKEN);
    const problem = panel.getByTestId('definition-problem');
    await problem.first().waitFor({ timeout: 10_000 });
    assert.match((await problem.first().textContent()) ?? '', /^line 4, column 3 — /);
    await panel.locator('.gutter [data-problem-line="4"]').waitFor();
    assert.equal(await source.getAttribute('aria-invalid'), 'true');
    assert.ok(await panel.getByTestId('definition-save').isDisabled(), 'a text with problems cannot be saved');
    await panel.screenshot({ path: `${SCREENSHOTS}/workflows-1-inline-problem.png` });

    // Mended: no problem left.
    await source.fill(WORKFLOW);
    await panel.locator('[data-testid="definition-check"][data-state="valid"]').waitFor({ timeout: 10_000 });
    assert.equal(await problem.count(), 0);
    assert.equal(await source.getAttribute('aria-invalid'), 'false');

    await panel.getByTestId('definition-save').click();
    await panel.getByText('Saved version 1.').waitFor();
    await panel.getByTestId('definition-publish').click();
    await panel.getByText('Published version 1 to production.').waitFor();
    await panel.getByTestId('definition-versions').filter({ hasText: 'production v1' }).waitFor();
    await panel.screenshot({ path: `${SCREENSHOTS}/workflows-2-saved-published.png` });

    // The input is checked as JSON before it is sent.
    const input = panel.getByTestId('run-input');
    await input.fill('{ "destination": ');
    assert.ok(await panel.getByTestId('run-start').isDisabled(), 'Start waits for valid JSON');
    await input.fill('{ "destination": "Lisbon" }');
    await panel.getByTestId('run-start').click();

    const status = panel.getByTestId('run-status');
    await panel.locator('[data-testid="run-status"][data-status="WAITING"]').waitFor({ timeout: 30_000 });
    const bannerShown = panel.getByTestId('approval-banner');
    await bannerShown.waitFor();
    assert.match((await bannerShown.textContent()) ?? '', /Waiting for approval at step \d+ \(approval\)/);
    assert.equal(await status.getAttribute('role'), 'status');
    await panel.locator('[data-testid="run-step"][data-name="plan"][data-status="DONE"]').waitFor();
    await panel.screenshot({ path: `${SCREENSHOTS}/workflows-3-waiting-for-approval.png` });

    await bannerShown.getByRole('textbox', { name: 'Comment (optional)' }).fill('have a good trip');
    await bannerShown.getByRole('button', { name: 'Approve' }).click();
    await panel.locator('[data-testid="run-status"][data-status="DONE"]').waitFor({ timeout: 30_000 });
    assert.match((await status.textContent()) ?? '', /DONE/);
    await panel.locator('[data-testid="run-step"][data-name="finish"][data-status="DONE"]').waitFor();
    assert.match((await panel.getByTestId('run-output').textContent()) ?? '', /"approved":true/);
    assert.equal(await panel.getByTestId('approval-banner').count(), 0, 'the banner is gone');
    await page.screenshot({ path: `${SCREENSHOTS}/workflows-4-done.png`, fullPage: true });
    assert.equal(await page.getByTestId('error').count(), 0, 'no error shown');

    // Back in the list: the workflow with its latest version and production label, and the run.
    await panel.getByTestId('workflows-back').click();
    const row = panel.locator('[data-testid="definition-row"][data-name="trip-approval"]');
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /v1.*v1/);
    await panel.locator('[data-testid="run-item"][data-status="DONE"]').first().waitFor();
  });
});
