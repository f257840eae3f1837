import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { bearer, devLogin, graphql } from '@jarvis/platform/client';
import { databaseVariants, dropSchemas, freeServicePorts, uniqueSchemaPrefix, waitFor } from '@jarvis/platform/testing';
import { ANSWER_SUBSCRIPTION, ASK_MUTATION, DEMO_OWNER, DEMO_SLUG, EXAMPLE_QUERY, SEARCH_QUERY } from '../scripts/seed.ts';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { banner, launch } from './helpers.ts';

/** The service processes (scripts/serve.ts) npm start forked. */
function serviceProcesses(parent: number): number[] {
  let listed: string;
  try {
    listed = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { encoding: 'utf8' });
  } catch {
    return []; // ps finds none yet (it exits 1)
  }
  return listed.split('\n').filter((line) => line.includes('serve.ts')).map((line) => Number(line.trim().split(/\s+/)[0]));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function portIsClosed(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/healthz`).then(() => false, () => true);
}

for (const variant of databaseVariants()) {
  describe(`npm start on ${variant.name}`, { skip: variant.skip }, () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-start-'));
    const prefix = uniqueSchemaPrefix();
    after(async () => {
      rmSync(dataDir, { recursive: true, force: true });
      if (variant.url) await dropSchemas(variant.url, prefix);
    });

    async function startOnce(expectSeed: 'created' | 'already there') {
      const ports = await freeServicePorts();
      const database = variant.url
        ? { DATABASE_URL: variant.url, DATABASE_SCHEMA_PREFIX: prefix, DATABASE_POOL_SIZE: '3' }
        : { DATA_DIR: dataDir };
      const launched = launch({ ...ports, ...database, LOG_LEVEL: 'warn' });
      try {
        const { gatewayUrl, tokenUrl, seed } = await banner(launched);
        assert.equal(seed, expectSeed);

        const token = await devLogin(tokenUrl, DEMO_SLUG, DEMO_OWNER);
        const data = await graphql<{ tenant: { name: string; users: unknown[]; knowledgeBases: unknown[]; conversations: { createdBy: { name: string } }[] } }>(
          gatewayUrl,
          EXAMPLE_QUERY,
          {},
          bearer(token),
        );
        assert.equal(data.tenant.name, 'Demo Inc.');
        assert.equal(data.tenant.knowledgeBases.length, 1);
        assert.equal(data.tenant.conversations[0]?.createdBy.name, 'Dana Demo');
        // The demo handbook is ingested in the background, then the printed search finds it.
        const { search } = await waitFor(
          () => graphql<{ search: { text: string; sectionPath: string[] }[] }>(gatewayUrl, SEARCH_QUERY, {}, bearer(token)),
          'the demo handbook to be searchable',
          { until: (answer) => answer.search.length > 0, timeoutMs: 30_000, intervalMs: 100 },
        );
        assert.match(search[0]!.text, /28 vacation days/);
        assert.deepEqual(search[0]!.sectionPath, ['Demo Inc. employee handbook', 'Time off']);
        // The printed question, and its answer followed over WebSocket as the banner says.
        const { ask } = await graphql<{ ask: { answer: { id: string } } }>(gatewayUrl, ASK_MUTATION, {}, bearer(token));
        const client = createClient({ url: gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: bearer(token), retryAttempts: 0 });
        let answer = '';
        try {
          for await (const result of client.iterate<{ answerStream: { type: string; delta: string | null } }>({ query: ANSWER_SUBSCRIPTION, variables: { id: ask.answer.id } })) {
            const event = result.data!.answerStream;
            answer += event.delta ?? '';
            if (event.type === 'DONE' || event.type === 'ERROR') {
              assert.equal(event.type, 'DONE');
              break;
            }
          }
        } finally {
          await client.dispose();
        }
        assert.match(answer, /28 vacation days/);
      } finally {
        launched.process.kill('SIGINT');
      }
      assert.equal(await launched.exited, 0, launched.output());
      for (const port of Object.values(ports)) assert.ok(await portIsClosed(Number(port)), `port ${port} still open`);
    }

    test('first run starts five services, seeds the demo tenant, answers the printed query, and Ctrl-C stops all', () =>
      startOnce('created'));

    test('a second run keeps the data and does not seed twice', () => startOnce('already there'));

    test('Ctrl-C while the services are still starting stops them all', async () => {
      const ports = await freeServicePorts();
      const schemaPrefix = uniqueSchemaPrefix();
      const ownDataDir = mkdtempSync(join(tmpdir(), 'jarvis-start-'));
      const database = variant.url
        ? { DATABASE_URL: variant.url, DATABASE_SCHEMA_PREFIX: schemaPrefix, DATABASE_POOL_SIZE: '3' }
        : { DATA_DIR: ownDataDir };
      const launched = launch({ ...ports, ...database, LOG_LEVEL: 'warn' });
      // The moment both service processes exist, long before either has started.
      const services = await waitFor(() => serviceProcesses(launched.process.pid!), 'npm start to start its service processes', {
        until: (pids) => pids.length === 2,
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      launched.process.kill('SIGINT');
      assert.equal(await launched.exited, 0, launched.output());
      await waitFor(() => services.every((pid) => !isRunning(pid)), 'every service process to exit', { timeoutMs: 30_000, intervalMs: 100 });
      for (const port of Object.values(ports)) assert.ok(await portIsClosed(Number(port)), `port ${port} still open`);
      rmSync(ownDataDir, { recursive: true, force: true });
      if (variant.url) await dropSchemas(variant.url, schemaPrefix);
    });
  });
}
