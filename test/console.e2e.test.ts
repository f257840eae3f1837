/**
 * What the gateway serves besides the API: the web console from its own origin (with the gateway's settings in
 * the page), sign-in passed on to tenancy, and GraphiQL in development only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { databaseVariants } from '@jarvis/platform/testing';
import { ensureConsoleBuilt } from '../scripts/console-build.ts';
import { signUp, startTestStack, type TestStack } from './helpers.ts';

const pglite = databaseVariants().find((variant) => variant.name === 'pglite')!;
const origin = (stack: TestStack) => stack.gatewayUrl.replace(/\/graphql$/, '');

before(async () => {
  const built = await ensureConsoleBuilt();
  assert.doesNotMatch(built, /failed|not built/, built);
});

describe('in development', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(pglite, { AUTH_DEV_LOGIN: 'true', NODE_ENV: 'development' });
  });
  after(() => stack?.close());

  test('the console page, its assets and GraphiQL come from the gateway, with no CDN', async () => {
    const page = await fetch(`${origin(stack)}/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /window\.__JARVIS__=\{"trustedDocuments":false\}/);
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1]!);
    assert.ok(assets.length > 0, 'the page loads its bundle from the gateway');
    for (const asset of assets) assert.equal((await fetch(`${origin(stack)}${asset}`)).status, 200, asset);
    assert.doesNotMatch(html, /https?:\/\//, 'nothing from another origin');
    const graphiql = await fetch(`${origin(stack)}/graphiql`);
    assert.equal(graphiql.status, 200);
    assert.match(await graphiql.text(), /<div id="graphiql"|graphiql/i);
  });

  test('sign-in at /oauth/token on the gateway reaches tenancy', async () => {
    const member = await signUp(stack, 'console');
    const response = await fetch(`${origin(stack)}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:jarvis:params:oauth:grant-type:dev-login', tenant: member.slug, email: member.email }),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(typeof ((await response.json()) as { access_token?: unknown }).access_token, 'string');
    const refused = await fetch(`${origin(stack)}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password' });
    assert.equal(refused.status, 400, "tenancy's refusal passes through");
  });
});

describe('in production', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(pglite, { NODE_ENV: 'production' });
  });
  after(() => stack?.close());

  test('the console is served, GraphiQL is not', async () => {
    assert.equal((await fetch(`${origin(stack)}/`)).status, 200);
    assert.equal((await fetch(`${origin(stack)}/graphiql`)).status, 404);
    assert.equal((await fetch(`${origin(stack)}/graphiql.html`)).status, 404);
  });
});
