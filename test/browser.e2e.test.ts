/**
 * The web console in a real browser: Debian's chromium driven by playwright-core against the gateway, which
 * serves the console from its own origin. A member signs in, creates a knowledge base, uploads a document and
 * sees it turn READY, asks a question and watches the answer stream in with a citation; then, with trusted
 * documents on, the console still works while an ad-hoc query is refused. Screenshots go to
 * test-results/browser/ (CHROMIUM_PATH names another browser binary; CI installs Debian's chromium).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ANONYMOUS, bearer, devLogin, graphql, PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform';
import { databaseVariants } from '@jarvis/platform/testing';
import { ensureConsoleBuilt } from '../scripts/console-build.ts';
import { CREATE_TENANT, startTestStack, type TestStack } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = 'test-results/browser';
const pglite = databaseVariants().find((variant) => variant.name === 'pglite')!;
// CI installs chromium (.ci/run); elsewhere the suite says why it did not run.
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no browser at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH` : false;

const HANDBOOK = `# Travel policy

## Hotels

The nightly hotel limit is 180 euros in most cities. Receipts are kept for ten years.
`;

/** A tenant and its owner made on tenancy directly (a public mutation, signed as the gateway would). */
async function createTenant(stack: TestStack, label: string) {
  const slug = `${label}-${Date.now().toString(36)}`;
  const email = `owner@${slug}.test`;
  const signed = await principalSigner(stack.config.INTERNAL_AUTH_SECRET!).sign(ANONYMOUS);
  await graphql(stack.subgraphUrls.tenancy!, CREATE_TENANT, { input: { name: `Browser ${label}`, slug, plan: 'ENTERPRISE', owner: { email, name: 'Browser Owner' } } }, { [PRINCIPAL_HEADER]: signed });
  return { slug, email, name: `Browser ${label}` };
}

const consoleUrl = (stack: TestStack) => stack.gatewayUrl.replace(/\/graphql$/, '/');

async function signIn(page: Page, stack: TestStack, tenant: { slug: string; email: string; name: string }) {
  await page.goto(consoleUrl(stack));
  await page.getByTestId('signin-tenant').fill(tenant.slug);
  await page.getByTestId('signin-email').fill(tenant.email);
  await page.getByTestId('signin-submit').click();
  await page.getByTestId('tenant-name').filter({ hasText: tenant.name }).waitFor();
}

describe('the web console in chromium', { skip }, () => {
  let browser: Browser;
  const stacks: TestStack[] = [];

  before(async () => {
    const built = await ensureConsoleBuilt();
    assert.doesNotMatch(built, /failed|not built/, built);
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await Promise.all(stacks.map((stack) => stack.close()));
  });

  async function open(overrides: Record<string, string> = {}) {
    // A slower local answerer, so the answer visibly streams.
    const stack = await startTestStack(pglite, { AUTH_DEV_LOGIN: 'true', CHAT_LOCAL_TOKEN_DELAY_MS: '40', ...overrides });
    stacks.push(stack);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (error) => console.error('console page error:', error));
    return { stack, page };
  }

  test('sign in, upload a document and see it READY, ask and watch the answer stream in with a citation', async () => {
    const { stack, page } = await open();
    const tenant = await createTenant(stack, 'console');
    await signIn(page, stack, tenant);

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
    const { stack, page } = await open({ TRUSTED_DOCUMENTS_ONLY: 'true' });
    const tenant = await createTenant(stack, 'trusted');
    const sent: string[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/graphql') && request.method() === 'POST') sent.push(request.postData() ?? '');
    });
    await signIn(page, stack, tenant);
    await page.getByTestId('kb-name').fill('Trusted');
    await page.getByTestId('kb-create').click();
    await page.getByTestId('kb-item').filter({ hasText: 'Trusted' }).waitFor();
    await page.getByTestId('usage-panel').waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}/4-trusted-documents.png`, fullPage: true });
    assert.equal(await page.getByTestId('error').count(), 0, 'no error shown');
    assert.ok(sent.length > 0 && sent.every((body) => !body.includes('"query"')), 'the console sent hashes only');

    const token = await devLogin(stack.tokenUrl, tenant.slug, tenant.email);
    const adHoc = await fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(token) }, body: JSON.stringify({ query: '{ tenant { slug } }' }) });
    assert.equal(adHoc.status, 400);
    assert.equal(((await adHoc.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code, 'QUERY_NOT_IN_SAFELIST');
  });
});
