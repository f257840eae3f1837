/** openVectorStore: which store keeps the vectors (Qdrant, pgvector, or the exact store as a fallback), and why. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Database } from '@jarvis/platform/db';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { openTestDatabase } from '@jarvis/platform/testing';
import { openVectorStore } from '../src/vectors/index.ts';
import { startFakeQdrant } from './fake-qdrant.ts';
import { MIGRATIONS, pglite, postgres, postgresHasPgvector } from './vector-store-variants.ts';

describe('openVectorStore', () => {
  test('keeps vectors in Qdrant when a URL is given, in pgvector otherwise', async () => {
    const db = await openTestDatabase(pglite, 'knowledge');
    const server = await startFakeQdrant();
    try {
      await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
      const pgvector = await openVectorStore({ db });
      assert.equal(pgvector.kind, 'pgvector');
      assert.equal(pgvector.fallbackReason, undefined);
      assert.equal((await openVectorStore({ db, qdrantUrl: server.url })).kind, 'qdrant');
    } finally {
      await Promise.all([db.close(), server.close()]);
    }
  });

  test('falls back to the exact store when the pgvector table is missing, and says why', async () => {
    const db = await openTestDatabase(pglite, 'knowledge');
    try {
      await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
      await db.withSystem((tx) => tx.exec('DROP TABLE chunk_vectors'));
      const store = await openVectorStore({ db });
      assert.equal(store.kind, 'exact');
      assert.match(store.fallbackReason ?? '', /chunk_vectors does not exist/);
    } finally {
      await db.close();
    }
  });

  describe('on PostgreSQL without pgvector', {
    skip: postgres.skip || (postgresHasPgvector ? 'the PostgreSQL at DATABASE_URL has pgvector' : false),
  }, () => {
    let db: Database;
    before(async () => {
      db = await openTestDatabase(postgres, 'knowledge');
    });
    after(() => db?.close());

    test('the knowledge migrations still apply, and vectors go to the exact store, saying why', async () => {
      const applied = await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
      assert.deepEqual(applied.slice(0, 3), ['quota-overrides/0001_quota_overrides.sql', '0001_knowledge_bases.sql', '0002_chunk_vectors.sql']);
      assert.ok(applied.includes('0004_chunk_embeddings.sql'));
      const store = await openVectorStore({ db });
      assert.equal(store.kind, 'exact');
      assert.match(store.fallbackReason ?? '', /no "vector" extension/);
      assert.match(store.fallbackReason ?? '', /QDRANT_URL/);
    });
  });
});
