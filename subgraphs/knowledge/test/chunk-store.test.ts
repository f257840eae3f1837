import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Database, Transaction } from '@jarvis/platform/db';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { analyze } from '@jarvis/platform/text';
import { databaseVariants, openTestDatabase } from '@jarvis/platform/testing';
import {
  analyzeChunks,
  chunksByIds,
  deleteChunksOfDocument,
  insertChunks,
  lexicalSearchStatement,
  searchLexical,
  type LexicalQuery,
  type StoredChunk,
} from '../src/chunks/store.ts';
import { chunkText } from '../src/ingestion/chunker.ts';
import { Bm25Index } from '../src/retrieval/bm25.ts';
import type { ScoredId } from '../src/retrieval/ranking.ts';

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));

interface Place {
  tenantId: string;
  knowledgeBaseId: string;
  documentId: string;
}

const CORPUS = [
  'Interleukin-6 (IL-6) rises in patients with severe COVID-19 and predicts respiratory failure.',
  'Vitamin D supplementation did not reduce the risk of respiratory infection in adults.',
  'T-cells respond to IL-6 signalling; blocking IL-6 reduced inflammation in mice.',
  'Respiratory infection rates in children fell after vaccination; adults were not studied.',
  'Mice lacking the receptor developed severe inflammation, and inflammation persisted for weeks.',
  'A randomised trial of aspirin found fewer cardiovascular events but more bleeding.',
  'Vitamin D levels were lower in patients admitted with respiratory failure than in controls.',
  'Bleeding risk with aspirin rises with age.',
];

const QUERIES = [
  'IL-6 in severe COVID-19',
  'vitamin D and respiratory infection',
  'inflammation inflammation in mice',
  'aspirin bleeding risk in older adults',
  'respiratory failure',
];

function near(actual: number, expected: number, tolerance = 1e-9): void {
  assert.ok(Math.abs(actual - expected) < tolerance, `expected ${expected}, got ${actual}`);
}

/** The same ranking, with the same scores to ~1e-9. */
function assertSameRanking(actual: ScoredId[], expected: ScoredId[], label: string): void {
  assert.deepEqual(actual.map((hit) => hit.id), expected.map((hit) => hit.id), label);
  actual.forEach((hit, i) => {
    assert.equal(typeof hit.score, 'number');
    near(hit.score, expected[i]!.score);
  });
}

function inMemoryIndex(chunks: StoredChunk[]): Bm25Index {
  const index = new Bm25Index();
  index.index(chunks.map((chunk) => ({ id: chunk.id, text: chunk.content })));
  return index;
}

for (const variant of databaseVariants()) {
  describe(`chunk store on ${variant.name}`, { skip: variant.skip }, () => {
    let db: Database & { close(): Promise<void> };

    before(async () => {
      db = await openTestDatabase(variant, 'knowledge');
      await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
    });
    after(() => db?.close());

    async function newKnowledgeBase(tenantId: string = randomUUID()): Promise<Place> {
      const knowledgeBaseId = randomUUID();
      await db.withTenant(tenantId, (tx) =>
        tx.query(`INSERT INTO knowledge_bases (id, tenant_id, name) VALUES ($1, $2, $3)`, [knowledgeBaseId, tenantId, knowledgeBaseId]),
      );
      return newDocument({ tenantId, knowledgeBaseId });
    }

    async function newDocument(place: Omit<Place, 'documentId'>): Promise<Place> {
      const documentId = randomUUID();
      await db.withTenant(place.tenantId, (tx) =>
        tx.query(
          `INSERT INTO documents (id, tenant_id, knowledge_base_id, title, media_type, content, content_hash, byte_size)
           VALUES ($1, $2, $3, 'a document', 'text/plain', '\\x00'::bytea, $4, 1)`,
          [documentId, place.tenantId, place.knowledgeBaseId, documentId],
        ),
      );
      return { ...place, documentId };
    }

    const chunkOf = (place: Place, content: string, ordinal: number, readers: string[] = []): StoredChunk => ({
      id: randomUUID(),
      ...place,
      ordinal,
      content,
      sectionPath: [],
      startOffset: 0,
      endOffset: content.length,
      readers,
    });

    async function stored(place: Place, texts: string[], readers: (i: number) => string[] = () => []): Promise<StoredChunk[]> {
      const chunks = texts.map((text, i) => chunkOf(place, text, i, readers(i)));
      await db.withTenant(place.tenantId, (tx) => insertChunks(tx, chunks));
      return chunks;
    }

    const search = (tenantId: string, query: Partial<LexicalQuery> & Pick<LexicalQuery, 'knowledgeBaseIds' | 'text'>) =>
      db.withTenant(tenantId, (tx) => searchLexical(tx, { topK: 10, reader: [], unrestrictedKnowledgeBaseIds: [], ...query }));

    const postingsOf = (tx: Transaction, chunkIds: string[]) =>
      tx.query<{ count: number }>(`SELECT count(*)::integer AS count FROM chunk_terms WHERE chunk_id = ANY($1::uuid[])`, [chunkIds]);

    test('scores and ranks as the in-memory Bm25Index does on the same corpus', async () => {
      const place = await newKnowledgeBase();
      const chunks = await stored(place, CORPUS);
      const index = inMemoryIndex(chunks);

      for (const text of QUERIES) {
        const expected = index.search(text, 10);
        assert.ok(expected.length >= 2, `"${text}" matches several chunks`);
        assertSameRanking(await search(place.tenantId, { knowledgeBaseIds: [place.knowledgeBaseId], text }), expected, text);
      }
      const topTwo = await search(place.tenantId, { knowledgeBaseIds: [place.knowledgeBaseId], text: QUERIES[1]!, topK: 2 });
      assertSameRanking(topTwo, index.search(QUERIES[1]!, 2), 'topK 2');
    });

    test('knowledge bases searched together are one corpus; each alone is its own', async () => {
      const first = await newKnowledgeBase();
      const second = await newKnowledgeBase(first.tenantId);
      const inFirst = await stored(first, CORPUS.slice(0, 5));
      const inSecond = await stored(second, CORPUS.slice(5));
      const together = inMemoryIndex([...inFirst, ...inSecond]);

      for (const text of QUERIES) {
        const both = await search(first.tenantId, { knowledgeBaseIds: [first.knowledgeBaseId, second.knowledgeBaseId], text });
        assertSameRanking(both, together.search(text, 10), text);
        const secondAlone = await search(first.tenantId, { knowledgeBaseIds: [second.knowledgeBaseId], text });
        assertSameRanking(secondAlone, inMemoryIndex(inSecond).search(text, 10), `${text} (second alone)`);
      }
    });

    test('nothing to search or nothing to match finds nothing; topK must be a positive integer', async () => {
      const place = await newKnowledgeBase();
      await stored(place, CORPUS);
      const knowledgeBaseIds = [place.knowledgeBaseId];

      assert.deepEqual(await search(place.tenantId, { knowledgeBaseIds: [], text: 'respiratory failure' }), []);
      assert.deepEqual(await search(place.tenantId, { knowledgeBaseIds, text: 'the of and is' }), []);
      assert.deepEqual(await search(place.tenantId, { knowledgeBaseIds, text: 'quantum chromodynamics' }), []);
      assert.deepEqual(await search(place.tenantId, { knowledgeBaseIds: [randomUUID()], text: 'respiratory failure' }), []);
      for (const topK of [0, -1, 1.5, Number.NaN]) {
        await assert.rejects(search(place.tenantId, { knowledgeBaseIds, text: 'respiratory', topK }), RangeError);
      }
    });

    test("a tenant never finds, reads or deletes another tenant's chunks, even by naming them", async () => {
      const ofA = await newKnowledgeBase();
      const chunksOfA = await stored(ofA, CORPUS);
      const ofB = await newKnowledgeBase();
      const chunksOfB = await stored(ofB, CORPUS.slice(0, 2));
      const knowledgeBaseIds = [ofA.knowledgeBaseId, ofB.knowledgeBaseId];

      for (const text of QUERIES) {
        const asB = await search(ofB.tenantId, { knowledgeBaseIds, text, unrestrictedKnowledgeBaseIds: knowledgeBaseIds });
        assertSameRanking(asB, inMemoryIndex(chunksOfB).search(text, 10), text);
      }
      const idsOfA = chunksOfA.map((chunk) => chunk.id);
      await db.withTenant(ofB.tenantId, async (tx) => {
        assert.deepEqual(await chunksByIds(tx, idsOfA), []);
        assert.equal(await deleteChunksOfDocument(tx, ofA.documentId), 0);
        assert.deepEqual(await postingsOf(tx, idsOfA), [{ count: 0 }]);
      });
      const asA = await search(ofA.tenantId, { knowledgeBaseIds: [ofA.knowledgeBaseId], text: QUERIES[0]! });
      assertSameRanking(asA, inMemoryIndex(chunksOfA).search(QUERIES[0]!, 10), 'A after B tried to delete');
    });

    test('restricted chunks are found by their readers and in unrestricted knowledge bases; statistics count them all', async () => {
      const place = await newKnowledgeBase();
      const [alice, bob, hr] = [`user:${randomUUID()}`, `user:${randomUUID()}`, `group:${randomUUID()}`];
      const readersOf = (i: number) => (i % 3 === 1 ? [alice] : i % 3 === 2 ? [hr] : []);
      const chunks = await stored(place, CORPUS, readersOf);
      const index = inMemoryIndex(chunks);
      const visibleTo = (reader: string[]) => (hit: ScoredId) => {
        const readers = chunks.find((chunk) => chunk.id === hit.id)!.readers;
        return readers.length === 0 || readers.some((principal) => reader.includes(principal));
      };
      const knowledgeBaseIds = [place.knowledgeBaseId];

      for (const reader of [[], [bob], [alice], [bob, hr], [alice, hr]]) {
        for (const text of QUERIES) {
          const expected = index.search(text, CORPUS.length).filter(visibleTo(reader));
          assertSameRanking(await search(place.tenantId, { knowledgeBaseIds, text, reader }), expected, `${text} as ${reader}`);
        }
      }
      const unrestricted = await search(place.tenantId, {
        knowledgeBaseIds,
        text: QUERIES[1]!,
        reader: [bob],
        unrestrictedKnowledgeBaseIds: knowledgeBaseIds,
      });
      assertSameRanking(unrestricted, index.search(QUERIES[1]!, 10), 'unrestricted');
      assert.ok(unrestricted.some((hit) => !visibleTo([bob])(hit)), 'the query finds restricted chunks');
    });

    test("deleting a document's chunks removes them, their postings and their share of the statistics", async () => {
      const doomed = await newKnowledgeBase();
      const kept = await newDocument(doomed);
      const doomedChunks = await stored(doomed, CORPUS.slice(0, 4));
      const keptChunks = await stored(kept, CORPUS.slice(4));

      await db.withTenant(doomed.tenantId, async (tx) => {
        assert.deepEqual(await postingsOf(tx, doomedChunks.map((chunk) => chunk.id)), [
          { count: doomedChunks.reduce((sum, chunk) => sum + new Set(analyze(chunk.content)).size, 0) },
        ]);
        assert.equal(await deleteChunksOfDocument(tx, doomed.documentId), doomedChunks.length);
        assert.equal(await deleteChunksOfDocument(tx, doomed.documentId), 0);
        assert.deepEqual(await postingsOf(tx, doomedChunks.map((chunk) => chunk.id)), [{ count: 0 }]);
        assert.deepEqual(await chunksByIds(tx, doomedChunks.map((chunk) => chunk.id)), []);
      });
      for (const text of QUERIES) {
        const hits = await search(doomed.tenantId, { knowledgeBaseIds: [doomed.knowledgeBaseId], text });
        assertSameRanking(hits, inMemoryIndex(keptChunks).search(text, 10), text);
      }
    });

    test('chunks that go with their document (cascade) leave the statistics too', async () => {
      const doomed = await newKnowledgeBase();
      const kept = await newDocument(doomed);
      await stored(doomed, CORPUS.slice(0, 4));
      const keptChunks = await stored(kept, CORPUS.slice(4));

      await db.withTenant(doomed.tenantId, (tx) => tx.query(`DELETE FROM documents WHERE id = $1`, [doomed.documentId]));
      for (const text of QUERIES) {
        const hits = await search(doomed.tenantId, { knowledgeBaseIds: [doomed.knowledgeBaseId], text });
        assertSameRanking(hits, inMemoryIndex(keptChunks).search(text, 10), text);
      }
    });

    test('chunksByIds returns what cites each chunk: its offsets slice the original text', async () => {
      const place = await newKnowledgeBase();
      const text = `# Handbook\n\nWelcome.\n\n## Leave\n\n${'Everyone gets 25 days of paid leave a year. '.repeat(40)}\n\n## Expenses\n\nSubmit receipts within 30 days.`;
      const chunks = chunkText(text, { maxTokens: 120, overlapTokens: 20 }).map((chunk) => ({
        ...chunkOf(place, chunk.text, chunk.index),
        sectionPath: chunk.sectionPath,
        startOffset: chunk.start,
        endOffset: chunk.end,
      }));
      assert.ok(chunks.length > 3);
      await db.withTenant(place.tenantId, (tx) => insertChunks(tx, chunks));

      const rows = await db.withTenant(place.tenantId, (tx) => chunksByIds(tx, [...chunks.map((chunk) => chunk.id), randomUUID()]));
      assert.equal(rows.length, chunks.length);
      for (const chunk of chunks) {
        const row = rows.find((candidate) => candidate.id === chunk.id)!;
        assert.deepEqual(row, {
          id: chunk.id,
          documentId: place.documentId,
          knowledgeBaseId: place.knowledgeBaseId,
          ordinal: chunk.ordinal,
          content: chunk.content,
          sectionPath: chunk.sectionPath,
          startOffset: chunk.startOffset,
          endOffset: chunk.endOffset,
        });
        assert.equal(text.slice(row.startOffset, row.endOffset), row.content);
      }
      assert.deepEqual(rows.find((row) => row.ordinal === chunks.length - 1)!.sectionPath, ['Handbook', 'Expenses']);
      assert.deepEqual(await db.withTenant(place.tenantId, (tx) => chunksByIds(tx, [])), []);
    });

    test('a large insert is split into statements and keeps every posting; the search reads chunk_terms_term_idx', async () => {
      const place = await newKnowledgeBase();
      const words = Array.from({ length: 3000 }, (_, i) => `w${i}`);
      // 400 chunks of 100 distinct terms each: 40,000 postings, more than one INSERT statement takes.
      const texts = Array.from({ length: 400 }, (_, i) => Array.from({ length: 100 }, (_, j) => words[(i * 37 + j * 11) % 3000]).join(' '));
      const chunks = await stored(place, texts);
      const text = `${words[5]} ${words[17]}`;
      const statement = lexicalSearchStatement({ knowledgeBaseIds: [place.knowledgeBaseId], text, topK: 10, reader: [], unrestrictedKnowledgeBaseIds: [] })!;
      const assertReadsTermIndex = async (when: string) => {
        const plan = await db.withTenant(place.tenantId, (tx) => tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement.sql}`, statement.params));
        const planText = plan.map((row) => row['QUERY PLAN']).join('\n');
        assert.match(planText, /Index (Only )?Scan using chunk_terms_term_idx on chunk_terms/, when);
        assert.doesNotMatch(planText, /Seq Scan on chunk_terms/, when);
      };

      const postings = await db.withTenant(place.tenantId, (tx) => postingsOf(tx, chunks.map((chunk) => chunk.id)));
      assert.deepEqual(postings, [{ count: 400 * 100 }]);
      assertSameRanking(await search(place.tenantId, { knowledgeBaseIds: [place.knowledgeBaseId], text }), inMemoryIndex(chunks).search(text, 10), text);
      await assertReadsTermIndex('before analyzeChunks (PGlite gathers no planner statistics on its own)');
      await analyzeChunks(db);
      await assertReadsTermIndex('after analyzeChunks');
    });
  });
}
