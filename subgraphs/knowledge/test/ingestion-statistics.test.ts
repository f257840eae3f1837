/**
 * The ingestion worker keeps the chunk tables' planner statistics: documents go through `ingest` as a bus
 * delivery would bring them, and nobody calls analyzeChunks. PGlite has no autovacuum; on PostgreSQL the
 * suite turns autovacuum off for its tables, so whatever statistics appear are the worker's.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { TenantIsolation } from '@jarvis/platform/contracts';
import { dedicatedSchemaName, enterTenant, type Database } from '@jarvis/platform/db';
import { createLogger } from '@jarvis/platform/logger';
import { createServiceMetrics } from '@jarvis/platform/metrics';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { LocalHashEmbedder } from '@jarvis/platform/text';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';
import { ANALYZE_GROWTH, ANALYZE_MIN_ROWS } from '../src/chunks/statistics.ts';
import * as documents from '../src/documents/store.ts';
import { ingestionMetrics } from '../src/ingestion/metrics.ts';
import { ingest, INGEST_TOPIC, type IngestionServices } from '../src/ingestion/worker.ts';
import * as knowledgeBases from '../src/knowledge-bases/store.ts';
import { openVectorStore, type VectorStore } from '../src/vectors/index.ts';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));
const CHUNK_TABLES = ['chunks', 'chunk_terms', 'knowledge_base_lexical_stats'];

/** A document of `words` distinct terms (each its own posting), in paragraphs of 60. */
function documentText(words: number): string {
  const prefix = `d${randomUUID().slice(0, 8)}w`;
  const paragraphs: string[] = [];
  for (let start = 0; start < words; start += 60) {
    paragraphs.push(Array.from({ length: Math.min(60, words - start) }, (_, i) => `${prefix}${start + i}`).join(' '));
  }
  return `# Report\n\n${paragraphs.join('\n\n')}\n`;
}

interface TableState {
  /** chunks + chunk_terms rows as the planner last counted them (reltuples; -1 each when never analyzed). */
  planned: number;
  /** chunks + chunk_terms rows there are. */
  stored: number;
  /** Column statistics (pg_stats rows) of chunk_terms. */
  termColumnStats: number;
}

for (const variant of databaseVariants()) {
  describe(`planner statistics kept by the ingestion worker, on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database & { close(): Promise<void> };
    let vectors: VectorStore;
    const embedder = new LocalHashEmbedder(64);

    before(async () => {
      db = await openTestDatabase(variant, 'knowledge');
      await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
      await withoutAutovacuum(db.schema);
      vectors = await openVectorStore({ db });
      await vectors.ensureCollection(embedder.dimensions);
    });
    after(async () => {
      await vectors?.close();
      await db?.close();
    });

    /** On PostgreSQL, only the worker may analyze the suite's tables. */
    async function withoutAutovacuum(schema: string): Promise<void> {
      if (db.kind !== 'postgres') return;
      await db.withSystem((tx) => tx.exec(CHUNK_TABLES.map((table) => `ALTER TABLE ${schema}.${table} SET (autovacuum_enabled = false);`).join('\n')));
    }

    const services = (overrides: Partial<IngestionServices> = {}): IngestionServices => ({
      db,
      vectors,
      embedder,
      log: createLogger('ingestion', 'silent'),
      outbox: { notify() {} },
      staleJobMs: 60_000,
      metrics: ingestionMetrics(createServiceMetrics('knowledge'), db),
      ...overrides,
    });

    /** Adds a document of `words` terms to a new knowledge base of the tenant and ingests it; returns its status. */
    async function ingestDocument(tenantId: string, isolation: TenantIsolation, words: number, use = services()): Promise<string> {
      const doc = await enterTenant(db, isolation)(tenantId, async (tx) => {
        const kb = await knowledgeBases.insertKnowledgeBase(tx, { id: randomUUID(), tenantId, name: `Reports ${randomUUID()}`, description: null, ownerId: null, memberAccess: 'READ' });
        const content = Buffer.from(documentText(words));
        return (await documents.insertDocument(tx, {
          id: randomUUID(),
          tenantId,
          knowledgeBaseId: kb.id,
          title: 'Report',
          mediaType: 'text/markdown',
          content,
          contentHash: randomUUID(),
          readers: [],
          createdBy: null,
        }))!;
      });
      await ingest({ id: randomUUID(), type: INGEST_TOPIC, tenantId, occurredAt: new Date().toISOString(), payload: { documentId: doc.id, isolation } }, use);
      const [row] = await enterTenant(db, isolation)(tenantId, (tx) => documents.documentsByIds(tx, [doc.id]));
      return row!.status;
    }

    const tableState = (schema: string) =>
      db.withSystem(async (tx) => {
        const [state] = await tx.query<TableState>(
          `SELECT (SELECT sum(reltuples)::float8 FROM pg_class WHERE oid IN (to_regclass($2), to_regclass($3))) AS planned,
             ((SELECT count(*) FROM ${schema}.chunks) + (SELECT count(*) FROM ${schema}.chunk_terms))::float8 AS stored,
             (SELECT count(*)::int FROM pg_stats WHERE schemaname = $1 AND tablename = 'chunk_terms') AS "termColumnStats"`,
          [schema, `${schema}.chunks`, `${schema}.chunk_terms`],
        );
        return state!;
      });

    test('a small document leaves the tables be; enough rows, and they are analyzed — again only once they grew by a fifth', async () => {
      const tenantId = randomUUID();
      assert.equal(await ingestDocument(tenantId, 'SHARED', 40), 'READY');
      const small = await tableState(db.schema);
      assert.ok(small.stored > 0 && small.stored < ANALYZE_MIN_ROWS, `a small document: ${small.stored} rows`);
      assert.deepEqual([small.planned, small.termColumnStats], [-2, 0], 'not analyzed (reltuples -1 for each table, no pg_stats)');

      assert.equal(await ingestDocument(tenantId, 'SHARED', 12_000), 'READY');
      const large = await tableState(db.schema);
      assert.ok(large.termColumnStats > 0, 'chunk_terms has column statistics');
      assert.equal(large.planned, large.stored, 'the planner counts every row, the small document too');
      for (const table of ['chunk_vectors', 'chunk_embeddings']) {
        const [vectors] = await db.withSystem((tx) =>
          tx.query<{ planned: number | null; stored: number | null }>(
            `SELECT (SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass($1)) AS planned,
               (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %s', $1), false, true, '')))[1]::text::float8 AS stored
             WHERE to_regclass($1) IS NOT NULL`,
            [`${db.schema}.${table}`],
          ),
        );
        if (vectors) assert.equal(vectors.planned, vectors.stored, `${table}: the vector tables are analyzed with the chunks`);
      }

      // From here a fifth of what the planner counted is the bar, above the 1,000-row minimum.
      const bar = ANALYZE_GROWTH * large.planned;
      let growth = 0;
      let heldBackAboveMinimum = false;
      for (let i = 0; ; i++) {
        const before = await tableState(db.schema);
        assert.equal(await ingestDocument(tenantId, 'SHARED', Math.round(bar / 3)), 'READY');
        const after = await tableState(db.schema);
        growth += after.stored - before.stored;
        if (growth > bar) {
          assert.equal(after.planned, after.stored, `document ${i}: ${growth} rows of growth are more than a fifth of ${large.planned}`);
          break;
        }
        assert.equal(after.planned, large.planned, `document ${i}: ${growth} rows of growth are not a fifth of ${large.planned}`);
        if (growth > ANALYZE_MIN_ROWS) heldBackAboveMinimum = true;
      }
      assert.ok(heldBackAboveMinimum, `more than ${ANALYZE_MIN_ROWS} rows written and not yet analyzed, as they were not a fifth (${bar})`);
    });

    test("a DEDICATED tenant's tables are analyzed in its own schema", async () => {
      const tenantId = randomUUID();
      const schema = dedicatedSchemaName(db.schema, tenantId);
      await db.withDedicatedTenant(tenantId, async () => {});
      await withoutAutovacuum(schema);
      const sharedBefore = await tableState(db.schema);

      assert.equal(await ingestDocument(tenantId, 'DEDICATED', 2_000), 'READY');
      const own = await tableState(schema);
      assert.ok(own.termColumnStats > 0, "the tenant's chunk_terms has column statistics");
      assert.equal(own.planned, own.stored);
      assert.deepEqual(await tableState(db.schema), sharedBefore, 'the shared tables are as they were');
    });

    test('an ANALYZE that fails is logged as a warning, and the document is READY all the same', async () => {
      const lines: string[] = [];
      const log = pino({ level: 'warn' }, new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) }));
      // The database as the worker sees it, but refusing the owner's transactions ANALYZE runs in.
      const refusing: Database = { ...db, withSystem: () => Promise.reject(new Error('the owner is away')) };
      const tenantId = randomUUID();
      assert.equal(await ingestDocument(tenantId, 'SHARED', 2_000, services({ db: refusing, log })), 'READY');
      const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message: string } });
      assert.deepEqual(
        warnings.map((entry) => [entry.level, entry.msg, entry.err?.message]),
        [[40, 'could not gather planner statistics for the chunk tables; will try again after the next document', 'the owner is away']],
      );
    });
  });
}
