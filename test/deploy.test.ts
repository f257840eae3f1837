import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { configSchema, SUBGRAPHS } from '@jarvis/platform';

const COMPOSE_FILE = new URL('../docker-compose.yml', import.meta.url);
const hasDockerCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;

test('docker-compose.yml is valid (docker-compose config -q)', { skip: !hasDockerCompose && 'docker-compose is not installed' }, () => {
  const result = spawnSync('docker-compose', ['-f', COMPOSE_FILE.pathname, 'config', '-q'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
});

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, unknown>;
}

test('every Jarvis service in docker-compose.yml runs a real service with variables Jarvis reads', () => {
  const compose = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  const ports: Record<string, number> = { gateway: 4000, ...Object.fromEntries(SUBGRAPHS.map((s) => [s.name, s.defaultPort])) };
  for (const name of Object.keys(ports)) {
    const service = compose.services[name];
    assert.ok(service, `${name} is missing`);
    assert.deepEqual(service.command, ['node', '--import', 'tsx', 'scripts/serve.ts', name]);
    for (const variable of Object.keys(service.environment ?? {})) {
      assert.ok(variable in configSchema.shape, `${name} sets ${variable}, which Jarvis does not read`);
    }
    assert.match(service.healthcheck!.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${ports[name]}/readyz`));
  }
  const overrides = compose.services.gateway!.environment!.SUBGRAPH_URLS!;
  for (const { name, defaultPort } of SUBGRAPHS) {
    assert.ok(overrides.includes(`${name}=http://${name}:${defaultPort}/graphql`), `gateway does not reach ${name}`);
    assert.ok(compose.services.gateway!.depends_on![name], `gateway does not wait for ${name}`);
  }
});
