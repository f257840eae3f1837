/**
 * Retrieval quality and speed of the knowledge subgraph's search core on SciFact (BEIR format, training
 * split): BM25 (lexical), the local hashed embedder with exact cosine over every document (vector), and
 * their fusion (hybrid), and the hybrid list's head reranked by the local reranker; and BM25 again through the
 * chunk store's SQL on an in-memory PGlite, each document one chunk. Documents are indexed as title + text.
 * Prints a markdown table.
 * The data lives beside the repository, in ../shared/data/scifact.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '@jarvis/platform/db';
import { QUOTA_OVERRIDES_MIGRATIONS } from '@jarvis/platform/quota-overrides';
import { LocalHashEmbedder } from '@jarvis/platform/text';
import * as chunkStore from '../subgraphs/knowledge/src/chunks/store.ts';
import * as documents from '../subgraphs/knowledge/src/documents/store.ts';
import * as knowledgeBases from '../subgraphs/knowledge/src/knowledge-bases/store.ts';
import { Bm25Index, DEFAULT_BM25 } from '../subgraphs/knowledge/src/retrieval/bm25.ts';
import { DEFAULT_HYBRID_WEIGHTS, DEFAULT_RRF, fuseHybrid, rrf } from '../subgraphs/knowledge/src/retrieval/fusion.ts';
import { ndcgAtK, recallAtK, type Qrels } from '../subgraphs/knowledge/src/retrieval/metrics.ts';
import { topK, type ScoredId } from '../subgraphs/knowledge/src/retrieval/ranking.ts';
import { LocalReranker } from '../subgraphs/knowledge/src/retrieval/rerank.ts';
import { mean, percentile } from './load.ts';

const DATA_DIR = new URL('../../shared/data/scifact/', import.meta.url);
const MIGRATIONS = fileURLToPath(new URL('../subgraphs/knowledge/migrations/', import.meta.url));
/** How many results each retriever hands to fusion, and how deep recall is measured. */
const DEPTH = 100;
/** How many of the hybrid list's best the reranker reorders; the rest keep their place, so recall@100 stays. */
const RERANK_CANDIDATES = 100;

interface Doc {
  id: string;
  title: string;
  text: string;
}

interface Query {
  id: string;
  text: string;
}

const DATA_FILES = ['corpus.jsonl', 'queries.jsonl', 'qrels/train.tsv'];

function missingDataFiles(): string[] {
  return DATA_FILES.map((name) => fileURLToPath(new URL(name, DATA_DIR))).filter((path) => !existsSync(path));
}

function dataFile(name: string): string {
  return readFileSync(new URL(name, DATA_DIR), 'utf8');
}

function jsonLines<T>(name: string): T[] {
  return dataFile(name)
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as T);
}

function loadCorpus(): Doc[] {
  return jsonLines<{ _id: string; title: string; text: string }>('corpus.jsonl').map((doc) => ({
    id: doc._id,
    title: doc.title,
    text: `${doc.title}\n${doc.text}`,
  }));
}

function loadQrels(): Map<string, Map<string, number>> {
  const qrels = new Map<string, Map<string, number>>();
  for (const line of dataFile('qrels/train.tsv').split('\n').slice(1)) {
    const [queryId, docId, grade] = line.trim().split('\t');
    if (!queryId || !docId || !grade) continue;
    if (!qrels.has(queryId)) qrels.set(queryId, new Map());
    qrels.get(queryId)!.set(docId, Number(grade));
  }
  return qrels;
}

function loadQueries(qrels: Map<string, Qrels>): Query[] {
  return jsonLines<{ _id: string; text: string }>('queries.jsonl')
    .filter((query) => qrels.has(query._id))
    .map((query) => ({ id: query._id, text: query.text }));
}

/** Exact cosine over every document: the vectors are unit length, so cosine is the dot product. */
class ExactVectorIndex {
  private readonly matrix: Float32Array;

  constructor(
    private readonly ids: string[],
    vectors: Float32Array[],
    private readonly dimensions: number,
  ) {
    this.matrix = new Float32Array(ids.length * dimensions);
    vectors.forEach((vector, row) => this.matrix.set(vector, row * dimensions));
  }

  search(query: Float32Array, k: number): ScoredId[] {
    const { matrix, dimensions } = this;
    const scores = new Float32Array(this.ids.length);
    for (let row = 0; row < this.ids.length; row++) {
      const offset = row * dimensions;
      let dot = 0;
      for (let i = 0; i < dimensions; i++) dot += matrix[offset + i]! * query[i]!;
      scores[row] = dot;
    }
    return topK(this.ids.length, (row) => scores[row]!, (row) => this.ids[row]!, k);
  }
}

interface SqlLexicalIndex {
  /** Writing the chunks and postings, then the planner statistics PGlite does not gather on its own. */
  indexingMs: number;
  search(text: string, k: number): Promise<ScoredId[]>;
  close(): Promise<void>;
}

/** SciFact in the chunk store on an in-memory PGlite: one knowledge base, each document one chunk. */
async function sqlLexicalIndex(docs: Doc[]): Promise<SqlLexicalIndex> {
  const db = await openDatabase({ service: 'knowledge', dataDir: 'memory://', appRole: 'jarvis_app', poolSize: 1 });
  await db.migrate(MIGRATIONS, [QUOTA_OVERRIDES_MIGRATIONS]);
  const tenantId = randomUUID();
  const knowledgeBaseId = randomUUID();
  const chunks = docs.map((doc): chunkStore.StoredChunk => ({
    id: randomUUID(), tenantId, knowledgeBaseId, documentId: randomUUID(), ordinal: 0, content: doc.text,
    sectionPath: [], startOffset: 0, endOffset: doc.text.length, readers: [],
  }));
  const docIdOf = new Map(chunks.map((chunk, i) => [chunk.id, docs[i]!.id]));
  await db.withTenant(tenantId, async (tx) => {
    await knowledgeBases.insertKnowledgeBase(tx, { id: knowledgeBaseId, tenantId, name: 'SciFact', description: null, ownerId: null, memberAccess: 'READ' });
    for (const [i, chunk] of chunks.entries()) {
      const content = new TextEncoder().encode(docs[i]!.text);
      await documents.insertDocument(tx, {
        id: chunk.documentId, tenantId, knowledgeBaseId, title: docs[i]!.title, mediaType: 'text/plain', content,
        contentHash: createHash('sha256').update(content).digest('hex'), readers: [], createdBy: null,
      });
    }
  });
  const indexing = await timed(async () => {
    await db.withTenant(tenantId, (tx) => chunkStore.insertChunks(tx, chunks));
    await chunkStore.analyzeChunks(db);
  });
  const query = { knowledgeBaseIds: [knowledgeBaseId], reader: [], unrestrictedKnowledgeBaseIds: [] };
  const search = async (text: string, k: number) => {
    const hits = await db.withTenant(tenantId, (tx) => chunkStore.searchLexical(tx, { ...query, text, topK: k }));
    return hits.map((hit) => ({ id: docIdOf.get(hit.id)!, score: hit.score }));
  };
  return { indexingMs: indexing.ms, search, close: () => db.close() };
}

interface ModeRun {
  mode: string;
  rankings: Map<string, string[]>;
  latenciesMs: number[];
}

async function timed<T>(work: () => T | Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work();
  return { result, ms: performance.now() - started };
}

async function runQueries(mode: string, queries: Query[], search: (text: string) => Promise<ScoredId[]>): Promise<ModeRun> {
  const rankings = new Map<string, string[]>();
  const latenciesMs: number[] = [];
  for (const query of queries) {
    const { result, ms } = await timed(() => search(query.text));
    rankings.set(query.id, result.map((hit) => hit.id));
    latenciesMs.push(ms);
  }
  return { mode, rankings, latenciesMs };
}

function perSecond(count: number, ms: number): string {
  return Math.round((count / ms) * 1000).toLocaleString('en-US');
}

function tableRow(run: ModeRun, qrels: Map<string, Qrels>, indexing: string): string {
  const judged = [...run.rankings].map(([queryId, ranked]) => ({ ranked, judgements: qrels.get(queryId)! }));
  const ndcg = mean(judged.map(({ ranked, judgements }) => ndcgAtK(ranked, judgements, 10)));
  const recall = mean(judged.map(({ ranked, judgements }) => recallAtK(ranked, judgements, DEPTH)));
  const latency = `${percentile(run.latenciesMs, 0.5).toFixed(2)} / ${percentile(run.latenciesMs, 0.95).toFixed(2)}`;
  return `| ${run.mode} | ${ndcg.toFixed(4)} | ${recall.toFixed(4)} | ${indexing} | ${latency} |`;
}

async function main(): Promise<void> {
  const missing = missingDataFiles();
  if (missing.length > 0) {
    console.error(`SciFact not found: missing ${missing.join(', ')}.\nPut the BEIR SciFact files (corpus.jsonl, queries.jsonl, qrels/train.tsv) in ${fileURLToPath(DATA_DIR)}`);
    process.exitCode = 1;
    return;
  }
  const qrels = loadQrels();
  const docs = loadCorpus();
  const queries = loadQueries(qrels);

  const bm25 = new Bm25Index();
  const lexicalIndexing = await timed(() => bm25.index(docs));
  const embedder = new LocalHashEmbedder();
  const embedding = await timed(() => embedder.embed(docs.map((doc) => doc.text)));
  const vectors = new ExactVectorIndex(docs.map((doc) => doc.id), embedding.result, embedder.dimensions);

  const lexicalSearch = (text: string) => Promise.resolve(bm25.search(text, DEPTH));
  const vectorSearch = async (text: string) => vectors.search((await embedder.embed([text]))[0]!, DEPTH);
  const hybridSearch = async (text: string) => fuseHybrid(await lexicalSearch(text), await vectorSearch(text)).slice(0, DEPTH);
  const rrfSearch = async (text: string) => rrf([await lexicalSearch(text), await vectorSearch(text)], DEFAULT_RRF).slice(0, DEPTH);
  const docsById = new Map(docs.map((doc) => [doc.id, doc]));
  const reranker = new LocalReranker();
  const rerankMs: number[] = [];
  const rerankedSearch = async (text: string) => {
    const fused = await hybridSearch(text);
    const head = fused.slice(0, RERANK_CANDIDATES).map((hit) => ({ ...docsById.get(hit.id)!, score: hit.score }));
    const reranking = await timed(() => reranker.rerank(text, head, head.length));
    rerankMs.push(reranking.ms);
    return [...reranking.result, ...fused.slice(RERANK_CANDIDATES)];
  };

  const { lexical: lexicalWeight, vector: vectorWeight } = DEFAULT_HYBRID_WEIGHTS;
  const runs = [
    await runQueries('LEXICAL (BM25)', queries, lexicalSearch),
    await runQueries(`VECTOR (${embedder.id}, exact cosine)`, queries, vectorSearch),
    await runQueries(`HYBRID (score blend ${lexicalWeight}/${vectorWeight}, default)`, queries, hybridSearch),
    await runQueries(`HYBRID (RRF k=${DEFAULT_RRF.k}, equal weights)`, queries, rrfSearch),
    await runQueries(`HYBRID + rerank (${reranker.id}, top ${RERANK_CANDIDATES})`, queries, rerankedSearch),
  ];
  const sqlLexical = await sqlLexicalIndex(docs);
  runs.push(await runQueries('LEXICAL (BM25 in SQL: chunk store on PGlite)', queries, (text) => sqlLexical.search(text, DEPTH)));
  await sqlLexical.close();

  const lexicalRate = perSecond(docs.length, lexicalIndexing.ms);
  const vectorRate = perSecond(docs.length, embedding.ms);
  const hybridRate = perSecond(docs.length, lexicalIndexing.ms + embedding.ms);
  const rates = [lexicalRate, vectorRate, hybridRate, hybridRate, hybridRate, perSecond(docs.length, sqlLexical.indexingMs)];
  console.log(`SciFact train: ${docs.length} documents (title + text), ${queries.length} queries; BM25 k1=${DEFAULT_BM25.k1} b=${DEFAULT_BM25.b}; each list cut at ${DEPTH} before fusion\n`);
  console.log('| mode | nDCG@10 | recall@100 | indexing (docs/s) | query p50 / p95 (ms) |');
  console.log('|---|---:|---:|---:|---:|');
  runs.forEach((run, i) => console.log(tableRow(run, qrels, rates[i]!)));
  console.log(`\nThe rerank alone adds p50 ${percentile(rerankMs, 0.5).toFixed(2)} / p95 ${percentile(rerankMs, 0.95).toFixed(2)} ms a query.`);
}

await main();
