import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { bearer, devLogin, graphql } from '@jarvis/platform';
import { databaseVariants, dropSchemas, freeServicePorts, uniqueSchemaPrefix, waitFor } from '@jarvis/platform/testing';
import { ANSWER_SUBSCRIPTION, ASK_MUTATION, DEMO_OWNER, DEMO_SLUG, EXAMPLE_QUERY, SEARCH_QUERY } from '../scripts/seed.ts';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { banner, launch } from './helpers.ts';

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
  });
}
