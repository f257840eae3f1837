/**
 * The vector store contract, run against every store variant: nearest chunks first by cosine similarity, topK,
 * the knowledge bases and readers a search is confined to, tenants kept apart (SHARED and DEDICATED), upserts
 * and deletes, and the collection's dimensions.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { dedicatedSchemaName } from '@jarvis/platform/db';
import { openVectorStore, type ChunkVector, type VectorQuery, type VectorStore } from '../src/vectors/index.ts';
import { HNSW_COSINE, storeVariants, vectorTableShape, type OpenedStore } from './vector-store-variants.ts';

interface Place {
  tenantId: string;
  knowledgeBaseId: string;
  documentId: string;
}

const newPlace = (tenantId: string = randomUUID(), knowledgeBaseId: string = randomUUID()): Place => ({
  tenantId,
  knowledgeBaseId,
  documentId: randomUUID(),
});

const chunkAt = (place: Place, vector: number[], readers?: string[]): ChunkVector => ({
  id: randomUUID(),
  ...place,
  vector: Float32Array.from(vector),
  ...(readers ? { readers } : {}),
});

for (const variant of storeVariants) {
  describe(`vector store contract: ${variant.name}`, { skip: variant.skip }, () => {
    let opened: OpenedStore;
    let store: VectorStore;

    before(async () => {
      opened = await variant.open();
      store = opened.store;
      await store.ensureCollection(4);
    });
    after(() => opened?.close());

    const search = (place: Place, vector: number[], options: Partial<VectorQuery> = {}) =>
      store.search({
        tenantId: place.tenantId,
        knowledgeBaseIds: [place.knowledgeBaseId],
        vector: Float32Array.from(vector),
        topK: 10,
        ...options,
      });
    const idsOf = (hits: { id: string }[]) => hits.map((hit) => hit.id);

    test('finds the nearest chunks first, scored by cosine similarity', async () => {
      const place = newPlace();
      const [same, near, farther, orthogonal, opposite] = [
        chunkAt(place, [3, 0, 0, 0]),
        chunkAt(place, [1, 1, 0, 0]),
        chunkAt(place, [1, 1, 1, 1]),
        chunkAt(place, [0, 1, 0, 0]),
        chunkAt(place, [-1, 0, 0, 0]),
      ];
      await store.upsert([orthogonal!, opposite!, same!, farther!, near!]);

      const hits = await search(place, [1, 0, 0, 0]);
      assert.deepEqual(idsOf(hits), idsOf([same!, near!, farther!, orthogonal!, opposite!]));
      const expected = [1, Math.SQRT1_2, 0.5, 0, -1];
      hits.forEach((hit, i) => assert.ok(Math.abs(hit.score - expected[i]!) < 1e-5, `score ${hit.score} ≠ ${expected[i]}`));
      assert.deepEqual(hits[0], { id: same!.id, documentId: place.documentId, knowledgeBaseId: place.knowledgeBaseId, score: hits[0]!.score });
    });

    test('returns at most topK hits, the closest ones', async () => {
      const place = newPlace();
      const chunks = [[1, 0, 0, 0], [1, 0.1, 0, 0], [1, 0.5, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0]].map((v) => chunkAt(place, v));
      await store.upsert(chunks);
      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0], { topK: 2 })), idsOf(chunks.slice(0, 2)));
      await assert.rejects(search(place, [1, 0, 0, 0], { topK: 0 }), /topK/);
    });

    test('searches only the knowledge bases it is given', async () => {
      const first = newPlace();
      const second = newPlace(first.tenantId);
      const inFirst = chunkAt(first, [1, 0, 0, 0]);
      const inSecond = chunkAt(second, [1, 0.1, 0, 0]);
      await store.upsert([inFirst, inSecond]);

      assert.deepEqual(idsOf(await search(first, [1, 0, 0, 0])), [inFirst.id]);
      assert.deepEqual(idsOf(await search(second, [1, 0, 0, 0])), [inSecond.id]);
      const both = await search(first, [1, 0, 0, 0], { knowledgeBaseIds: [first.knowledgeBaseId, second.knowledgeBaseId] });
      assert.deepEqual(idsOf(both), [inFirst.id, inSecond.id]);
      assert.deepEqual(await search(first, [1, 0, 0, 0], { knowledgeBaseIds: [] }), []);
    });

    test("a tenant never finds another tenant's chunks, even by naming their knowledge base", async () => {
      const ofA = newPlace();
      const chunkOfA = chunkAt(ofA, [1, 0, 0, 0]);
      const ofB = newPlace();
      const chunkOfB = chunkAt(ofB, [1, 0, 0, 0]);
      await store.upsert([chunkOfA, chunkOfB]);

      const asB = await search(ofB, [1, 0, 0, 0], { knowledgeBaseIds: [ofA.knowledgeBaseId, ofB.knowledgeBaseId] });
      assert.deepEqual(idsOf(asB), [chunkOfB.id]);
      assert.deepEqual(await search({ ...ofA, tenantId: ofB.tenantId }, [1, 0, 0, 0]), []);
    });

    test("a tenant's deletes never reach another tenant's chunks", async () => {
      const ofA = newPlace();
      const chunkOfA = chunkAt(ofA, [0, 0, 1, 0]);
      await store.upsert([chunkOfA]);
      const tenantB = randomUUID();

      await store.deleteDocument(tenantB, ofA.documentId);
      await store.deleteKnowledgeBase(tenantB, ofA.knowledgeBaseId);
      assert.deepEqual(idsOf(await search(ofA, [0, 0, 1, 0])), [chunkOfA.id]);
    });

    test('restricted chunks are found only by their readers; unrestricted ones by everyone', async () => {
      const place = newPlace();
      const open = chunkAt(place, [1, 0, 0, 0]);
      const restricted = chunkAt(place, [1, 0.1, 0, 0], ['user-1', 'group-hr']);
      await store.upsert([open, restricted]);

      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0], { reader: ['user-2', 'group-eng'] })), [open.id]);
      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0], { reader: ['user-2', 'group-hr'] })), [open.id, restricted.id]);
      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0], { reader: ['user-1'] })), [open.id, restricted.id]);
      assert.deepEqual(idsOf(await search(place, [1, 0, 0, 0])), [open.id], 'without principals only unrestricted chunks');
    });

    test("a knowledge base the caller manages shows its restricted chunks; the others' stay restricted", async () => {
      const managed = newPlace();
      const other = newPlace(managed.tenantId);
      const inManaged = chunkAt(managed, [1, 0, 0, 0], ['user-1']);
      const inOther = chunkAt(other, [1, 0.1, 0, 0], ['user-1']);
      await store.upsert([inManaged, inOther]);
      const both = { knowledgeBaseIds: [managed.knowledgeBaseId, other.knowledgeBaseId], reader: ['user-2'] };
      assert.deepEqual(idsOf(await search(managed, [1, 0, 0, 0], { ...both, unrestrictedKnowledgeBaseIds: [managed.knowledgeBaseId] })), [inManaged.id]);
      assert.deepEqual(idsOf(await search(managed, [1, 0, 0, 0], both)), []);
    });

    test('upserting a chunk again replaces its vector, place and readers', async () => {
      const first = newPlace();
      const moved = newPlace(first.tenantId);
      const original = chunkAt(first, [1, 0, 0, 0], ['user-1']);
      await store.upsert([original]);
      const replaced: ChunkVector = { ...original, ...moved, vector: Float32Array.from([0, 1, 0, 0]), readers: [] };
      await store.upsert([replaced]);

      assert.deepEqual(await search(first, [1, 0, 0, 0], { reader: ['user-1'] }), []);
      const [hit, ...rest] = await search(moved, [0, 1, 0, 0]);
      assert.deepEqual(rest, []);
      assert.equal(hit!.id, original.id);
      assert.equal(hit!.documentId, moved.documentId);
      assert.ok(Math.abs(hit!.score - 1) < 1e-5);
    });

    test('of one id upserted twice in one call, the last wins', async () => {
      const place = newPlace();
      const first = chunkAt(place, [1, 0, 0, 0]);
      await store.upsert([first, { ...first, vector: Float32Array.from([0, 0, 0, 1]) }]);
      const [hit] = await search(place, [0, 0, 0, 1]);
      assert.ok(Math.abs(hit!.score - 1) < 1e-5);
    });

    test('deleteDocument removes exactly that document', async () => {
      const doomed = newPlace();
      const kept = { ...doomed, documentId: randomUUID() };
      const chunks = [chunkAt(doomed, [1, 0, 0, 0]), chunkAt(doomed, [1, 1, 0, 0]), chunkAt(kept, [1, 0.5, 0, 0])];
      await store.upsert(chunks);

      await store.deleteDocument(doomed.tenantId, doomed.documentId);
      assert.deepEqual(idsOf(await search(doomed, [1, 0, 0, 0])), [chunks[2]!.id]);
    });

    test('deleteKnowledgeBase removes exactly that knowledge base', async () => {
      const doomed = newPlace();
      const kept = newPlace(doomed.tenantId);
      const chunks = [chunkAt(doomed, [1, 0, 0, 0]), { ...chunkAt(doomed, [1, 1, 0, 0]), documentId: randomUUID() }, chunkAt(kept, [1, 0, 0, 0])];
      await store.upsert(chunks);

      await store.deleteKnowledgeBase(doomed.tenantId, doomed.knowledgeBaseId);
      assert.deepEqual(await search(doomed, [1, 0, 0, 0]), []);
      assert.deepEqual(idsOf(await search(kept, [1, 0, 0, 0])), [chunks[2]!.id]);
    });

    test("a DEDICATED tenant's chunks are found, kept apart and deleted as a shared tenant's are", async () => {
      const place = newPlace();
      const dedicated = (chunk: ChunkVector): ChunkVector => ({ ...chunk, isolation: 'DEDICATED' });
      const [near, far] = [dedicated(chunkAt(place, [1, 0.1, 0, 0])), dedicated(chunkAt(place, [0, 1, 0, 0]))];
      const other = dedicated(chunkAt(newPlace(), [1, 0, 0, 0]));
      await store.upsert([far!, near!, other]);

      const hits = await search(place, [1, 0, 0, 0], { isolation: 'DEDICATED' });
      assert.deepEqual(idsOf(hits), [near!.id, far!.id]);
      assert.ok(Math.abs(hits[0]!.score - 1 / Math.sqrt(1.01)) < 1e-5);
      await store.deleteDocument(place.tenantId, place.documentId, 'DEDICATED');
      assert.deepEqual(await search(place, [1, 0, 0, 0], { isolation: 'DEDICATED' }), []);
      assert.deepEqual(idsOf(await search({ ...place, tenantId: other.tenantId, knowledgeBaseId: other.knowledgeBaseId }, [1, 0, 0, 0], { isolation: 'DEDICATED' })), [other.id]);
    });

    if (variant.name.startsWith('pgvector')) test("on pgvector, a DEDICATED tenant's table gets the dimensions and HNSW index: a new schema when it is created, existing ones at ensureCollection", async () => {
      const db = opened.db!;
      const newcomer = randomUUID();
      await store.upsert([{ ...chunkAt(newPlace(newcomer), [1, 0, 0, 0]), isolation: 'DEDICATED' }]);
      const shaped = await vectorTableShape(db, dedicatedSchemaName(db.schema, newcomer));
      assert.equal(shaped.dimensions, 4);
      assert.match(shaped.index ?? 'no index', HNSW_COSINE);

      // A schema some other part of the service creates (a document added) is shaped in the transaction that creates it.
      const earlier = randomUUID();
      await db.withDedicatedTenant(earlier, async () => {});
      const earlierSchema = dedicatedSchemaName(db.schema, earlier);
      assert.equal((await vectorTableShape(db, earlierSchema)).dimensions, 4, 'shaped when created');
      // As one created before this store was opened (or by a release without shaping) would be: unshaped.
      await db.withSystem(async (tx) => {
        const [extension] = await tx.query<{ schema: string }>(`SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'vector'`);
        await tx.exec(`DROP INDEX ${earlierSchema}.chunk_vectors_embedding_idx;
          ALTER TABLE ${earlierSchema}.chunk_vectors ALTER COLUMN embedding TYPE ${extension!.schema}.vector`);
      });
      assert.deepEqual(await vectorTableShape(db, earlierSchema), { dimensions: -1, index: null }, 'a new schema is unshaped');
      const reopened = await openVectorStore({ db });
      await reopened.ensureCollection(4);
      const atStart = await vectorTableShape(db, earlierSchema);
      assert.equal(atStart.dimensions, 4);
      assert.match(atStart.index ?? 'no index', HNSW_COSINE);
      await assert.rejects(reopened.ensureCollection(5), /4-dimensional/);
    });

    test('ensureCollection is idempotent and keeps what is stored; other dimensions are refused', async () => {
      const place = newPlace();
      const chunk = chunkAt(place, [0, 1, 1, 0]);
      await store.upsert([chunk]);

      await store.ensureCollection(4);
      await store.ensureCollection(4);
      assert.deepEqual(idsOf(await search(place, [0, 1, 1, 0])), [chunk.id]);
      await assert.rejects(store.ensureCollection(5), /4-dimensional/);
      await assert.rejects(store.upsert([chunkAt(place, [1, 0, 0])]), /expected a 4-dimensional vector/);
      await assert.rejects(search(place, [1, 0, 0, 0, 0]), /expected a 4-dimensional vector/);
    });
  });
}
