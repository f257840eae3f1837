import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, configSchema, internalAuthSecret, loadConfig, trustedIssuer } from '@jarvis/platform/config';

test('with no environment, the defaults run the embedded platform', () => {
  const config = loadConfig({});
  assert.equal(config.DATABASE_URL, undefined);
  assert.equal(config.GATEWAY_PORT, 4000);
  assert.equal(config.DATA_DIR, '.jarvis/data');
  assert.deepEqual(config.SUBGRAPH_URLS, {});
  assert.equal(config.SEED_DEMO, true);
});

test('an invalid variable stops start-up with a message naming it', () => {
  assert.throws(() => loadConfig({ GATEWAY_PORT: 'eighty' }), (error: Error) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /GATEWAY_PORT/);
    return true;
  });
  assert.throws(() => loadConfig({ DATABASE_URL: 'not a url' }), /DATABASE_URL/);
  assert.throws(() => loadConfig({ SUBGRAPH_URLS: 'tenancy' }), /SUBGRAPH_URLS.*name=url/s);
  assert.throws(() => loadConfig({ DATABASE_SCHEMA_PREFIX: 'Robert"); DROP' }), /DATABASE_SCHEMA_PREFIX/);
});

test('a port fetch refuses to connect to is refused at start-up, naming the variable', () => {
  for (const [variable, port] of [['GATEWAY_PORT', '6000'], ['TENANCY_PORT', '6667'], ['USAGE_PORT', '10080']] as const) {
    assert.throws(() => loadConfig({ [variable]: port }), (error: Error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, new RegExp(`${variable}: is a port fetch refuses`));
      return true;
    });
  }
  assert.equal(loadConfig({ GATEWAY_PORT: '6001' }).GATEWAY_PORT, 6001);
});

test('SUBGRAPH_URLS maps subgraph names to URLs', () => {
  const config = loadConfig({ SUBGRAPH_URLS: 'tenancy=http://t:1/graphql, chat=http://c:2/graphql' });
  assert.deepEqual(config.SUBGRAPH_URLS, { tenancy: 'http://t:1/graphql', chat: 'http://c:2/graphql' });
});

test("the README's configuration table lists exactly the variables Jarvis reads", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.split('## Configuration')[1]!.split('\n## ')[0]!;
  const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1]);
  assert.deepEqual(documented.sort(), Object.keys(configSchema.shape).sort());
});

test('a service will not start without the internal auth secret, and a short one is refused', () => {
  assert.throws(() => internalAuthSecret(loadConfig({})), /INTERNAL_AUTH_SECRET is required/);
  assert.throws(() => loadConfig({ INTERNAL_AUTH_SECRET: 'short' }), /INTERNAL_AUTH_SECRET/);
  assert.equal(internalAuthSecret(loadConfig({ INTERNAL_AUTH_SECRET: 's'.repeat(32) })), 's'.repeat(32));
});

test('the trusted JWT issuer needs all three of its variables', () => {
  assert.equal(trustedIssuer(loadConfig({})), undefined);
  assert.throws(() => trustedIssuer(loadConfig({ JWT_ISSUER: 'https://issuer.test' })), /all three or none/);
  assert.deepEqual(
    trustedIssuer(loadConfig({ JWT_ISSUER: 'https://i.test', JWT_AUDIENCE: 'api', JWT_JWKS_URL: 'https://i.test/jwks.json' })),
    { issuer: 'https://i.test', audience: 'api', jwksUrl: 'https://i.test/jwks.json' },
  );
});
