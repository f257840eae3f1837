/**
 * Killing the ingestion worker mid-way loses nothing and doubles nothing: the knowledge subgraph runs as a
 * child process, is killed (SIGKILL) while documents are PROCESSING, and a new one finishes every job —
 * each document READY once, with exactly its chunks, exactly its vectors and one storage usage event.
 * Embedded: PGlite files and the in-process bus (the lost queue is recovered by the sweep of stale jobs).
 * Real services: PostgreSQL and RabbitMQ (unacknowledged jobs come back from the broker).
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { postGraphQL } from '@jarvis/platform/client';
import { PRINCIPAL_HEADER, principalSigner, USAGE_TOPIC, type Principal } from '@jarvis/platform/contracts';
import { openDatabase, type Database } from '@jarvis/platform/db';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { dropSchemas, uniqueSchemaPrefix, waitFor } from '@jarvis/platform/testing';
import * as documents from '../src/documents/store.ts';
import { chunkText } from '../src/ingestion/chunker.ts';
import { queueIngestion } from '../src/ingestion/worker.ts';
import * as knowledgeBases from '../src/knowledge-bases/store.ts';

const WORKER = fileURLToPath(new URL('./fixtures/ingestion-worker.ts', import.meta.url));
const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));
const DOCUMENTS = 12;

interface Variant {
  name: string;
  skip: string | false;
  env: () => Record<string, string>;
  cleanUp: (env: Record<string, string>) => Promise<void>;
}

const databaseUrl = process.env.DATABASE_URL;
const amqpUrl = process.env.AMQP_URL;

const variants: Variant[] = [
  {
    name: 'PGlite files and the in-process bus',
    skip: false,
    env: () => ({ DATA_DIR: mkdtempSync(join(tmpdir(), 'jarvis-crash-')) }),
    cleanUp: async (env) => rmSync(env.DATA_DIR!, { recursive: true, force: true }),
  },
  {
    name: 'PostgreSQL and RabbitMQ',
    skip: databaseUrl && amqpUrl ? false : 'DATABASE_URL and AMQP_URL are not both set',
    env: () => ({
      DATABASE_URL: databaseUrl!,
      DATABASE_SCHEMA_PREFIX: uniqueSchemaPrefix(),
      AMQP_URL: amqpUrl!,
      BUS_NAMESPACE: `crash-${randomBytes(4).toString('hex')}`,
    }),
    cleanUp: (env) => dropSchemas(env.DATABASE_URL!, env.DATABASE_SCHEMA_PREFIX!),
  },
];

/** Report n has n + 1 sections of a chunk or so each: with embedding time per chunk, the jobs end one by one. */
function documentText(n: number): string {
  const section = (i: number) => `## Section ${i}\n\n${`Section ${i} of report ${n} describes finding ${n * 100 + i} in some detail. `.repeat(20)}`;
  return `# Report ${n}\n\n${Array.from({ length: n + 1 }, (_, i) => section(i)).join('\n\n')}\n`;
}

for (const variant of variants) {
  describe(`a worker killed mid-ingestion, on ${variant.name}`, { skip: variant.skip }, () => {
    const env: Record<string, string> = variant.skip ? {} : { ...variant.env(), INTERNAL_AUTH_SECRET: randomBytes(32).toString('base64url'), LOG_LEVEL: 'silent' };
    const tenantId = randomUUID();
    const signer = principalSigner(env.INTERNAL_AUTH_SECRET ?? 'unused: the suite is skipped');
    const principal: Principal = { tenantId, roles: ['owner'], scopes: [], permissions: ['kb:read'], isolation: 'SHARED' };
    let worker: ChildProcess | undefined;

    after(async () => {
      worker?.kill('SIGKILL');
      await variant.cleanUp(env);
    });

    const open = () =>
      openDatabase({ service: 'knowledge', url: env.DATABASE_URL, dataDir: env.DATA_DIR ?? 'memory://', schemaPrefix: env.DATABASE_SCHEMA_PREFIX, appRole: 'jarvis_app', poolSize: 2 });

    async function startWorker(): Promise<{ process: ChildProcess; url: string }> {
      const child = fork(WORKER, [], { env: { ...inherited(), ...env, EMBED_DELAY_PER_TEXT_MS: '300', STALE_JOB_MS: '3000' }, execArgv: ['--import', 'tsx'], stdio: 'inherit' });
      const url = await new Promise<string>((resolve, reject) => {
        child.once('message', (message) => resolve((message as { ready: string }).ready));
        child.once('exit', (code) => reject(new Error(`the worker exited (${code}) before it was ready`)));
      });
      return { process: child, url };
    }

    async function statuses(url: string, ids: string[]): Promise<string[]> {
      const headers = { [PRINCIPAL_HEADER]: await signer.sign(principal) };
      const query = `query($id: ID!) { document(id: $id) { status } }`;
      const answers = await Promise.all(ids.map((id) => postGraphQL<{ document: { status: string } }>(url, query, { id }, headers)));
      return answers.map(({ body }) => body.data?.document?.status ?? `missing: ${JSON.stringify(body)}`);
    }

    test('a second worker completes every job exactly once', { timeout: 120_000 }, async () => {
      const ids = await seed();

      const first = await startWorker();
      worker = first.process;
      // Killed while jobs are PROCESSING (the worker may take them all at once, so none need be READY yet).
      await waitFor(() => statuses(first.url, ids), 'some documents PROCESSING', {
        until: (s) => s.includes('PROCESSING'),
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      first.process.kill('SIGKILL');
      await new Promise((resolve) => first.process.once('exit', resolve));

      const second = await startWorker();
      worker = second.process;
      const final = await waitFor(() => statuses(second.url, ids), 'every document READY', {
        until: (s) => s.every((status) => status === 'READY' || status === 'FAILED'),
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      assert.deepEqual(final, ids.map(() => 'READY'));
      second.process.kill('SIGTERM');
      await new Promise((resolve) => second.process.once('exit', resolve));
      worker = undefined;

      await checkStores(ids);
    });

    async function seed(): Promise<string[]> {
      const db = await open();
      try {
        await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
        return await db.withTenant(tenantId, async (tx) => {
          const kb = await knowledgeBases.insertKnowledgeBase(tx, { id: randomUUID(), tenantId, name: 'Reports', description: null, ownerId: null, memberAccess: 'READ' });
          const ids: string[] = [];
          for (let n = 0; n < DOCUMENTS; n++) {
            const content = Buffer.from(documentText(n));
            const doc = await documents.insertDocument(tx, {
              id: randomUUID(),
              tenantId,
              knowledgeBaseId: kb.id,
              title: `Report ${n}`,
              mediaType: 'text/markdown',
              content,
              contentHash: `hash-${n}`,
              readers: [],
              createdBy: null,
            });
            await queueIngestion(tx, doc!, 'SHARED');
            ids.push(doc!.id);
          }
          return ids;
        });
      } finally {
        await db.close();
      }
    }

    async function checkStores(ids: string[]): Promise<void> {
      const db = await open();
      try {
        const expectedChunks = ids.map((_, n) => chunkText(documentText(n)).length);
        await db.withTenant(tenantId, async (tx) => {
          const rows = await tx.query<{ id: string; chunkCount: number; chunks: number; postings: number }>(
            `SELECT d.id, d.chunk_count AS "chunkCount", (SELECT count(*)::int FROM chunks c WHERE c.document_id = d.id) AS chunks,
               (SELECT count(DISTINCT t.chunk_id)::int FROM chunk_terms t JOIN chunks c ON c.id = t.chunk_id WHERE c.document_id = d.id) AS postings
             FROM documents d`,
          );
          const byId = new Map(rows.map((row) => [row.id, row]));
          assert.deepEqual(ids.map((id) => byId.get(id)!.chunks), expectedChunks, 'chunk rows per document');
          assert.deepEqual(ids.map((id) => byId.get(id)!.chunkCount), expectedChunks, 'chunk counts recorded');
          assert.deepEqual(ids.map((id) => byId.get(id)!.postings), expectedChunks, 'every chunk in the lexical index');
          assert.equal(await vectorCount(tx), expectedChunks.reduce((a, b) => a + b), 'one vector per chunk, none left over');
        });
        const storageEvents = await db.withSystem((tx) =>
          tx.query<{ count: number }>(`SELECT count(*)::int AS count FROM outbox WHERE topic = $1`, [USAGE_TOPIC]),
        );
        assert.equal(storageEvents[0]!.count, DOCUMENTS, 'one storage usage event per document');
      } finally {
        await db.close();
      }
    }
  });
}

/** This process's environment without the services a variant chooses for itself (CI sets them for every test). */
function inherited(): NodeJS.ProcessEnv {
  const { DATABASE_URL: _database, AMQP_URL: _amqp, REDIS_URL: _redis, QDRANT_URL: _qdrant, ...rest } = process.env;
  return rest;
}

/** Vectors live in pgvector's table where the extension is, in the exact store's otherwise. */
async function vectorCount(tx: Parameters<Parameters<Database['withTenant']>[1]>[0]): Promise<number> {
  const [{ table }] = (await tx.query<{ table: string }>(
    `SELECT CASE WHEN to_regclass('chunk_vectors') IS NOT NULL THEN 'chunk_vectors' ELSE 'chunk_embeddings' END AS table`,
  )) as [{ table: string }];
  const [row] = await tx.query<{ count: number }>(`SELECT count(*)::int AS count FROM ${table}`);
  return row!.count;
}
