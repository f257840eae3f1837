/**
 * The web console in a real browser, as a new user meets it: `npm start` (scripts/start.ts, on free ports and a
 * data directory of its own), then Debian's chromium driven by playwright-core at the printed console address.
 * The demo owner signs in, creates a knowledge base, uploads a document and sees it turn READY, asks a question
 * and watches the answer stream in with a citation; then, with trusted documents on, the console still works
 * while an ad-hoc query is refused. Screenshots go to test-results/browser/ (CHROMIUM_PATH names another
 * browser binary; CI installs Debian's chromium).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { bearer, devLogin } from '@jarvis/platform/client';
import { freeServicePorts } from '@jarvis/platform/testing';
import { DEMO_OWNER, DEMO_SLUG } from '../scripts/seed.ts';
import { banner, launch, type Launch } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = 'test-results/browser';
// CI installs chromium (.ci/run); elsewhere the suite says why it did not run.
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no browser at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH` : false;

const HANDBOOK = `# Travel policy

## Hotels

The nightly hotel limit is 180 euros in most cities. Receipts are kept for ten years.
`;

interface Started {
  launched: Launch;
  consoleUrl: string;
  gatewayUrl: string;
  tokenUrl: string;
}

describe('the web console in chromium, on npm start', { skip }, () => {
  let browser: Browser;
  const running: Launch[] = [];
  const dataDirs: string[] = [];

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    for (const launched of running) {
      launched.process.kill('SIGINT');
      await launched.exited;
    }
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  /** `npm start` as a new user runs it (embedded PGlite, the demo seeded), with `env` on top. */
  async function start(env: Record<string, string> = {}): Promise<Started> {
    const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-browser-'));
    dataDirs.push(dataDir);
    // A slower local answerer, so the answer visibly streams.
    const launched = launch({ ...(await freeServicePorts()), DATA_DIR: dataDir, LOG_LEVEL: 'warn', CHAT_LOCAL_TOKEN_DELAY_MS: '40', ...env });
    running.push(launched);
    return { launched, ...(await banner(launched)) };
  }

  async function openPage(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (error) => console.error('console page error:', error));
    return page;
  }

  async function signIn(page: Page, consoleUrl: string): Promise<Page> {
    await page.goto(consoleUrl);
    // The demo owner is filled in.
    assert.equal(await page.getByTestId('signin-tenant').inputValue(), DEMO_SLUG);
    assert.equal(await page.getByTestId('signin-email').inputValue(), DEMO_OWNER);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('tenant-name').filter({ hasText: 'Demo Inc.' }).waitFor();
    return page;
  }

  test('sign in, upload a document and see it READY, ask and watch the answer stream in with a citation', async () => {
    const { consoleUrl } = await start();
    const page = await signIn(await openPage(), consoleUrl);

    await page.getByTestId('kb-name').fill('Handbooks');
    await page.getByTestId('kb-create').click();
    await page.getByTestId('kb-item').filter({ hasText: 'Handbooks' }).click();
    await page.getByTestId('upload-input').setInputFiles({ name: 'travel.md', mimeType: 'text/markdown', buffer: Buffer.from(HANDBOOK) });
    await page.locator('[data-testid="document-row"][data-status="READY"]').filter({ hasText: 'travel' }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: `${SCREENSHOTS}/1-document-ready.png`, fullPage: true });

    await page.getByTestId('chat-input').fill('What is the nightly hotel limit?');
    await page.getByTestId('chat-send').click();
    const answer = page.getByTestId('chat-answer');
    // The answer as it grows: several lengths on the way means tokens arrived one after another.
    const lengths = new Set<number>();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await page.getByTestId('citation').count()) === 0) {
      lengths.add(((await answer.textContent()) ?? '').trim().length);
      await page.waitForTimeout(25);
    }
    await page.screenshot({ path: `${SCREENSHOTS}/2-answer-streamed.png`, fullPage: true });
    assert.ok([...lengths].filter((length) => length > 0).length >= 3, `the answer streamed in pieces: lengths seen ${[...lengths].join(', ')}`);
    assert.match((await answer.textContent()) ?? '', /180 euros/);

    await page.getByTestId('citation').first().click();
    const detail = page.getByTestId('citation-detail');
    await detail.waitFor();
    assert.match((await detail.textContent()) ?? '', /180 euros/);
    assert.match((await detail.textContent()) ?? '', /travel/i, 'the cited document');
    await page.screenshot({ path: `${SCREENSHOTS}/3-citation.png`, fullPage: true });
    assert.equal(await page.getByTestId('error').count(), 0, 'no error shown');
  });

  test('with trusted documents on, the console works and an ad-hoc query is refused', async () => {
    const { consoleUrl, gatewayUrl, tokenUrl } = await start({ TRUSTED_DOCUMENTS_ONLY: 'true' });
    const sent: string[] = [];
    const page = await openPage();
    page.on('request', (request) => {
      if (request.url().endsWith('/graphql') && request.method() === 'POST') sent.push(request.postData() ?? '');
    });
    const signedIn = await signIn(page, consoleUrl);
    await signedIn.getByTestId('kb-name').fill('Trusted');
    await signedIn.getByTestId('kb-create').click();
    await signedIn.getByTestId('kb-item').filter({ hasText: 'Trusted' }).waitFor();
    await signedIn.getByTestId('usage-panel').waitFor();
    await signedIn.screenshot({ path: `${SCREENSHOTS}/4-trusted-documents.png`, fullPage: true });
    assert.equal(await signedIn.getByTestId('error').count(), 0, 'no error shown');
    assert.ok(sent.length > 0 && sent.every((body) => !body.includes('"query"')), 'the console sent hashes only');

    const token = await devLogin(tokenUrl, DEMO_SLUG, DEMO_OWNER);
    const adHoc = await fetch(gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(token) }, body: JSON.stringify({ query: '{ tenant { slug } }' }) });
    assert.equal(adHoc.status, 400);
    assert.equal(((await adHoc.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code, 'QUERY_NOT_IN_SAFELIST');
  });
});
