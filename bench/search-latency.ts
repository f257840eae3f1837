/**
 * Ingestion rate and search latency of the knowledge subgraph at scale, through its own code paths: a seeded
 * synthetic corpus (markdown documents of 10 paragraphs, 100–170 words each, Zipf-distributed vocabulary) in
 * one tenant and four knowledge bases, each document inserted PENDING and ingested by the ingestion worker
 * (`ingest`, two jobs at a time), until BENCH_CHUNKS chunks (default 100,000); then searched through
 * SearchService as a request's context builds it, in every mode, top 10 over all four knowledge bases.
 *
 * Embedded PGlite + pgvector always, in a temporary directory (100k chunks do not fit PGlite's in-memory
 * file system). With DATABASE_URL set, PostgreSQL too, at BENCH_POSTGRES_CHUNKS (default 20,000): without
 * pgvector that is the exact vector store, which compares every vector, so its VECTOR-bearing modes get
 * BENCH_EXACT_QUERIES (default 40) queries. Prints markdown tables; progress and query plans go to stderr.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILT_IN_ROLES, createLogger, createServiceMetrics, ENGLISH_STOPWORDS, LocalHashEmbedder, openDatabase, uuidOf, type Database, type Principal, type Transaction } from '@jarvis/platform';
import { dropSchemas, uniqueSchemaPrefix } from '@jarvis/platform/testing';
import { analyzeChunks, lexicalSearchStatement } from '../subgraphs/knowledge/src/chunks/store.ts';
import * as documents from '../subgraphs/knowledge/src/documents/store.ts';
import { chunkText, DEFAULT_CHUNKING } from '../subgraphs/knowledge/src/ingestion/chunker.ts';
import { ingestionMetrics } from '../subgraphs/knowledge/src/ingestion/metrics.ts';
import { ingest, INGEST_TOPIC, type IngestionServices } from '../subgraphs/knowledge/src/ingestion/worker.ts';
import { KnowledgeBaseService } from '../subgraphs/knowledge/src/knowledge-bases/service.ts';
import * as knowledgeBases from '../subgraphs/knowledge/src/knowledge-bases/store.ts';
import { LocalReranker } from '../subgraphs/knowledge/src/retrieval/rerank.ts';
import { SearchService, type SearchMode } from '../subgraphs/knowledge/src/search/service.ts';
import { openVectorStore, type OpenedVectorStore } from '../subgraphs/knowledge/src/vectors/index.ts';
import { searchSql } from '../subgraphs/knowledge/src/vectors/pgvector.ts';
import { hardware, loadAverage, percentile } from './load.ts';

const MIGRATIONS = fileURLToPath(new URL('../subgraphs/knowledge/migrations/', import.meta.url));
const SEED = 20261127;
const PGLITE_CHUNKS = Number(process.env.BENCH_CHUNKS ?? 100_000);
const POSTGRES_CHUNKS = Number(process.env.BENCH_POSTGRES_CHUNKS ?? 20_000);
const EXACT_VECTOR_QUERIES = Number(process.env.BENCH_EXACT_QUERIES ?? 40);

const KNOWLEDGE_BASES = 4;
const PARAGRAPHS = 10;
/** The machine has two cores: one job embeds while the other waits on the database. */
const CONCURRENT_JOBS = 2;
const PROGRESS_EVERY = 10_000;
const CONTENT_WORDS = 50_000;
/** Word frequencies in English text fall off about as 1 / rank. */
const ZIPF_EXPONENT = 1.0;
const TOP_K = 10;
const QUERIES_PER_KIND = 80;
const QUERIES_BEFORE_ANALYZE = 20;
const WARM_UP_QUERIES = 10;

const embedder = new LocalHashEmbedder();
const log = createLogger('search-latency', 'silent');

// ---------------------------------------------------------------------------------------------------------
// The synthetic corpus

/** mulberry32: small, fast and seeded, so the corpus and the queries are the same on every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ONSETS = ['b', 'c', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'cr', 'dr', 'gr', 'pl', 'st', 'tr', 'ch', 'sh', 'th'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'io', 'ou'];
const CODAS = ['', '', 'n', 'r', 'l', 'm', 'x', 'nd', 'st', 'ct'];

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

function pseudoWord(random: () => number): string {
  const syllables = 2 + Math.floor(random() * 3);
  let word = '';
  for (let i = 0; i < syllables; i++) word += pick(random, ONSETS) + pick(random, VOWELS);
  return word + pick(random, CODAS);
}

/** Ranked by frequency: stopwords first, as in English, then made-up content words. */
interface Vocabulary {
  words: string[];
  /** Rank of the first content word. */
  firstContentRank: number;
}

function buildVocabulary(random: () => number): Vocabulary {
  const content = new Set<string>();
  while (content.size < CONTENT_WORDS) {
    const word = pseudoWord(random);
    if (!ENGLISH_STOPWORDS.has(word)) content.add(word);
  }
  return { words: [...ENGLISH_STOPWORDS, ...content], firstContentRank: ENGLISH_STOPWORDS.size };
}

/** Draws word ranks with probability ∝ 1 / rank^s, by binary search over the cumulative weights. */
function zipfSampler(size: number, random: () => number): () => number {
  const cumulative = new Float64Array(size);
  let total = 0;
  for (let rank = 0; rank < size; rank++) cumulative[rank] = total += 1 / (rank + 1) ** ZIPF_EXPONENT;
  return () => {
    const target = random() * total;
    let low = 0;
    let high = size - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cumulative[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
}

/** 100–170 words in sentences of 8–20: about 300 tokens, so the chunker (400 tokens) makes one chunk of most. */
function paragraph(words: (count: number) => string[], random: () => number): string {
  const length = 100 + Math.floor(random() * 71);
  const sentences: string[] = [];
  for (let written = 0; written < length; ) {
    const sentenceLength = Math.min(length - written, 8 + Math.floor(random() * 13));
    sentences.push(words(sentenceLength).join(' ') + '.');
    written += sentenceLength;
  }
  return sentences.join(' ');
}

/** The bench's own ids: the same on every run, apart from any other's. */
const idOf = (name: string) => uuidOf(`search-latency:${name}`);

const TENANT_ID = idOf('tenant');
const KNOWLEDGE_BASE_IDS = Array.from({ length: KNOWLEDGE_BASES }, (_, i) => idOf(`knowledge-base:${i}`));
/** A member of the tenant who may read (viewer): what searching asks for. */
const READER: Principal = {
  tenantId: TENANT_ID,
  userId: idOf('reader'),
  roles: ['viewer'],
  scopes: [],
  permissions: [...BUILT_IN_ROLES.viewer!],
  isolation: 'SHARED',
};

interface SyntheticDocument {
  id: string;
  knowledgeBaseId: string;
  title: string;
  text: string;
  /** What the worker's chunker will make of it, counted ahead so the corpus stops at the same document every run. */
  chunks: number;
}

/**
 * Markdown documents, generated as the jobs take them so that the corpus never sits in memory, until they
 * hold `chunkCount` chunks. Two headings give the chunks section paths, which the worker embeds with them.
 */
function* syntheticDocuments(vocabulary: Vocabulary, chunkCount: number): Generator<SyntheticDocument> {
  const random = seededRandom(SEED + 1);
  const nextRank = zipfSampler(vocabulary.words.length, random);
  const words = (count: number) => Array.from({ length: count }, () => vocabulary.words[nextRank()]!);
  const heading = () => `## ${Array.from({ length: 2 }, () => contentWord(vocabulary, random, COMMON_RANKS)).join(' ')}`;
  for (let index = 0, chunks = 0; chunks < chunkCount; index++) {
    const paragraphs = Array.from({ length: PARAGRAPHS }, () => paragraph(words, random));
    const text = [heading(), ...paragraphs.slice(0, 5), heading(), ...paragraphs.slice(5)].join('\n\n') + '\n';
    const doc = {
      id: idOf(`document:${index}`),
      knowledgeBaseId: KNOWLEDGE_BASE_IDS[index % KNOWLEDGE_BASES]!,
      title: `Report ${index}`,
      text,
      chunks: chunkText(text, DEFAULT_CHUNKING).length,
    };
    chunks += doc.chunks;
    yield doc;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Queries

type QueryKind = 'common' | 'rare' | 'mixed';

interface BenchQuery {
  kind: QueryKind;
  text: string;
}

/** Content-word ranks a common term is drawn from (within a few hundred of the top), and a rare one. */
const COMMON_RANKS: [number, number] = [0, 300];
const RARE_RANKS: [number, number] = [5_000, CONTENT_WORDS];

function contentWord(vocabulary: Vocabulary, random: () => number, [from, to]: [number, number]): string {
  return vocabulary.words[vocabulary.firstContentRank + from + Math.floor(random() * (to - from))]!;
}

/** Common: 3–5 frequent terms (long postings); rare: 2–4 rare ones; mixed: two of each. */
function buildQueries(vocabulary: Vocabulary): BenchQuery[] {
  const random = seededRandom(SEED + 2);
  const words = (count: number, ranks: [number, number]) => Array.from({ length: count }, () => contentWord(vocabulary, random, ranks));
  const queries: BenchQuery[] = [];
  for (let i = 0; i < QUERIES_PER_KIND; i++) {
    queries.push({ kind: 'common', text: words(3 + Math.floor(random() * 3), COMMON_RANKS).join(' ') });
    queries.push({ kind: 'rare', text: words(2 + Math.floor(random() * 3), RARE_RANKS).join(' ') });
    queries.push({ kind: 'mixed', text: [...words(2, COMMON_RANKS), ...words(2, RARE_RANKS)].join(' ') });
  }
  return queries;
}

// ---------------------------------------------------------------------------------------------------------
// Timing

const milliseconds = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000).toLocaleString('en-US');
const thousands = (value: number) => value.toLocaleString('en-US');
const progress = (message: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);

// ---------------------------------------------------------------------------------------------------------
// Ingestion, by the worker

interface Target {
  label: string;
  db: Database;
  vectors: OpenedVectorStore;
  close(): Promise<void>;
}

interface Ingestion {
  documents: number;
  chunks: number;
  wallMs: number;
  /** Chunks/s of each stretch of PROGRESS_EVERY chunks, to see whether writing slows as the indexes grow. */
  stretchRates: number[];
}

async function createKnowledgeBases(db: Database): Promise<void> {
  await db.withTenant(TENANT_ID, async (tx) => {
    for (const [i, id] of KNOWLEDGE_BASE_IDS.entries()) {
      await knowledgeBases.insertKnowledgeBase(tx, { id, tenantId: TENANT_ID, name: `Synthetic ${i}`, description: null, ownerId: null, memberAccess: 'READ' });
    }
  });
}

/** As an upload does: the document PENDING, then its job, as queueIngestion would have put it on the bus. */
async function uploadAndIngest(target: Target, doc: SyntheticDocument, services: IngestionServices): Promise<void> {
  const content = new TextEncoder().encode(doc.text);
  await target.db.withTenant(TENANT_ID, (tx) =>
    documents.insertDocument(tx, {
      id: doc.id,
      tenantId: TENANT_ID,
      knowledgeBaseId: doc.knowledgeBaseId,
      title: doc.title,
      mediaType: 'text/markdown',
      content,
      contentHash: createHash('sha256').update(content).digest('hex'),
      readers: [],
      createdBy: READER.userId!,
    }),
  );
  const payload = { documentId: doc.id, isolation: 'SHARED' };
  await ingest({ id: randomUUID(), type: INGEST_TOPIC, tenantId: TENANT_ID, occurredAt: new Date().toISOString(), payload }, services);
}

async function ingestCorpus(target: Target, vocabulary: Vocabulary, chunkCount: number): Promise<Ingestion> {
  const metrics = ingestionMetrics(createServiceMetrics('knowledge'), target.db);
  const services: IngestionServices = { db: target.db, vectors: target.vectors, embedder, log, outbox: { notify() {} }, staleJobMs: 60_000, metrics };
  const queue = syntheticDocuments(vocabulary, chunkCount);
  const ingestion: Ingestion = { documents: 0, chunks: 0, wallMs: 0, stretchRates: [] };
  const started = performance.now();
  let stretch = { chunks: 0, at: started };
  const job = async () => {
    for (let next = queue.next(); !next.done; next = queue.next()) {
      await uploadAndIngest(target, next.value, services);
      ingestion.documents++;
      ingestion.chunks += next.value.chunks;
      if (ingestion.chunks - stretch.chunks >= PROGRESS_EVERY) {
        const now = performance.now();
        ingestion.stretchRates.push(((ingestion.chunks - stretch.chunks) / (now - stretch.at)) * 1000);
        progress(`${target.label}: ${thousands(ingestion.chunks)} chunks, the last ${thousands(ingestion.chunks - stretch.chunks)} at ${ingestion.stretchRates.at(-1)!.toFixed(0)} chunks/s; load ${loadAverage()}`);
        stretch = { chunks: ingestion.chunks, at: now };
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT_JOBS }, job));
  ingestion.wallMs = performance.now() - started;
  await checkAllReady(target.db, ingestion);
  return ingestion;
}

/** The worker records a failure on the document rather than throwing: a FAILED document would go unnoticed. */
async function checkAllReady(db: Database, ingestion: Ingestion): Promise<void> {
  const [row] = await db.withTenant(TENANT_ID, (tx) =>
    tx.query<{ ready: number; chunks: number }>(
      `SELECT count(*) FILTER (WHERE status = 'READY')::integer AS ready, COALESCE(sum(chunk_count), 0)::integer AS chunks FROM documents`,
    ),
  );
  if (row!.ready !== ingestion.documents || row!.chunks !== ingestion.chunks) {
    throw new Error(`${row!.ready} of ${ingestion.documents} documents READY with ${row!.chunks} chunks; expected ${ingestion.chunks}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Search, by SearchService

const MODES: { label: string; mode: SearchMode; rerank: boolean }[] = [
  { label: 'LEXICAL', mode: 'LEXICAL', rerank: false },
  { label: 'VECTOR', mode: 'VECTOR', rerank: false },
  { label: 'HYBRID', mode: 'HYBRID', rerank: false },
  { label: 'HYBRID + rerank (local)', mode: 'HYBRID', rerank: true },
];

interface ModeRun {
  label: string;
  latencies: Map<QueryKind, number[]>;
  emptyAnswers: number;
}

/** The services anew for every search, as each request's context builds them: no loader cache carries over. */
function searchOn(target: Target) {
  const deps = { vectors: async () => target.vectors, embedder, reranker: new LocalReranker() };
  return (query: string, mode: SearchMode, rerank: boolean) => {
    const kbs = new KnowledgeBaseService(target.db, READER, deps.vectors, { notify() {} });
    return new SearchService(target.db, READER, kbs, deps, log).search({ query, knowledgeBaseIds: null, topK: TOP_K, mode, rerank });
  };
}

/** Every mode after a warm-up, except that the exact store's VECTOR-bearing modes get `vectorQueries` queries. */
async function runModes(target: Target, queries: BenchQuery[], vectorQueries: number): Promise<ModeRun[]> {
  const search = searchOn(target);
  const runs: ModeRun[] = [];
  for (const { label, mode, rerank } of MODES) {
    const asked = mode === 'LEXICAL' ? queries : queries.slice(0, vectorQueries);
    progress(`${target.label}: ${label}, ${asked.length} queries; load ${loadAverage()}`);
    for (const query of asked.slice(0, WARM_UP_QUERIES)) await search(query.text, mode, rerank);
    const run: ModeRun = { label, latencies: new Map(), emptyAnswers: 0 };
    for (const query of asked) {
      const started = performance.now();
      const answer = await search(query.text, mode, rerank);
      run.latencies.set(query.kind, [...(run.latencies.get(query.kind) ?? []), performance.now() - started]);
      if (answer.length === 0) run.emptyAnswers++;
    }
    runs.push(run);
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------------------
// Plans, and pgvector's HNSW index against an exact scan

const SCOPE = { knowledgeBaseIds: KNOWLEDGE_BASE_IDS, reader: [`user:${READER.userId}`], unrestrictedKnowledgeBaseIds: [] };
/** What the pgvector store sets before it searches. */
const HNSW_SETTINGS = `SELECT set_config('hnsw.ef_search', '100', true), set_config('hnsw.iterative_scan', 'strict_order', true)`;
/** Only the HNSW index returns rows in distance order, so without sorting the planner must take it. */
const FORCE_HNSW = `SELECT set_config('enable_sort', 'off', true)`;
const FORCE_EXACT = `SELECT set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`;
const DIAGNOSTIC_QUERIES = 40;

/** The pgvector store's search statement and its parameters for `text`, as it runs them (pool of 100). */
async function vectorStatement(db: Database, text: string): Promise<{ sql: string; params: unknown[] }> {
  const [schema] = await db.withSystem((tx) =>
    tx.query<{ name: string }>(`SELECT extnamespace::regnamespace::text AS name FROM pg_extension WHERE extname = 'vector'`),
  );
  const [vector] = await embedder.embed([text]);
  return { sql: searchSql(schema!.name), params: [`[${vector!.join(',')}]`, SCOPE.knowledgeBaseIds, SCOPE.reader, 100, []] };
}

function inTenantWith<T>(db: Database, settings: string[], work: (tx: Transaction) => Promise<T>): Promise<T> {
  return db.withTenant(TENANT_ID, async (tx) => {
    for (const setting of settings) await tx.query(setting);
    return work(tx);
  });
}

/** EXPLAIN ANALYZE of a query's lexical and (pgvector) vector statements, to stderr: which plans are taken. */
async function printPlans(target: Target, query: string, when: string): Promise<void> {
  const explain = async ({ sql, params }: { sql: string; params: unknown[] }, settings: string[] = []) => {
    const rows = await inTenantWith(target.db, settings, (tx) => tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params));
    return rows.map((row) => row['QUERY PLAN'].replace(/'\[[^\]]*\]'/g, "'[…]'")).join('\n');
  };
  progress(`${target.label}, ${when}: lexical plan for "${query}"\n${await explain(lexicalSearchStatement({ ...SCOPE, text: query, topK: 100 })!)}`);
  if (target.vectors.kind === 'pgvector') {
    progress(`${target.label}, ${when}: vector plan\n${await explain(await vectorStatement(target.db, query), [HNSW_SETTINGS])}`);
  }
}

/** The vector statement with its plan forced each way, statement time only: what the index saves and what it misses. */
async function diagnoseHnsw(target: Target, queries: BenchQuery[]): Promise<string | undefined> {
  if (target.vectors.kind !== 'pgvector') return undefined;
  const nearest = async (text: string, plan: string) => {
    const { sql, params } = await vectorStatement(target.db, text);
    return inTenantWith(target.db, [HNSW_SETTINGS, plan], async (tx) => {
      const started = performance.now();
      const ids = (await tx.query<{ id: string }>(sql, params)).slice(0, TOP_K).map((row) => row.id);
      return { ids, ms: performance.now() - started };
    });
  };
  const hnswMs: number[] = [];
  const exactMs: number[] = [];
  let found = 0;
  let wanted = 0;
  for (const query of queries.slice(0, DIAGNOSTIC_QUERIES)) {
    const hnsw = await nearest(query.text, FORCE_HNSW);
    const exact = await nearest(query.text, FORCE_EXACT);
    hnswMs.push(hnsw.ms);
    exactMs.push(exact.ms);
    found += exact.ids.filter((id) => hnsw.ids.includes(id)).length;
    wanted += exact.ids.length;
  }
  const p50p95 = (values: number[]) => `${milliseconds(percentile(values, 0.5))} / ${milliseconds(percentile(values, 0.95))}`;
  return (
    `pgvector's search statement alone, plan forced, ${hnswMs.length} queries: HNSW index p50/p95 ${p50p95(hnswMs)} ms, ` +
    `exact scan ${p50p95(exactMs)} ms; HNSW recall@${TOP_K} against the exact scan ${(found / Math.max(1, wanted)).toFixed(3)}.`
  );
}

// ---------------------------------------------------------------------------------------------------------
// Report

function latencyTable(runs: ModeRun[]): string[] {
  return [
    '| mode | queries | p50 ms | p95 ms | p99 ms | common p50 | rare p50 | mixed p50 | empty answers |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map((run) => {
      const all = [...run.latencies.values()].flat();
      const kindP50 = (kind: QueryKind) => milliseconds(percentile(run.latencies.get(kind) ?? [], 0.5));
      const cells = [all.length, ...[0.5, 0.95, 0.99].map((f) => milliseconds(percentile(all, f))), kindP50('common'), kindP50('rare'), kindP50('mixed'), run.emptyAnswers];
      return `| ${run.label} | ${cells.join(' | ')} |`;
    }),
  ];
}

async function storeSizes(db: Database): Promise<string> {
  const [postings] = await db.withTenant(TENANT_ID, (tx) => tx.query<{ count: number }>(`SELECT count(*)::integer AS count FROM chunk_terms`));
  const tables = await db.withSystem((tx) =>
    tx.query<{ name: string; size: string }>(
      `SELECT relname AS name, pg_size_pretty(pg_total_relation_size(oid)) AS size FROM pg_class
       WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'
         AND relname IN ('chunks', 'chunk_terms', 'chunk_vectors', 'chunk_embeddings') ORDER BY relname`,
    ),
  );
  return `${thousands(postings!.count)} postings; with their indexes ${tables.map((row) => `${row.name} ${row.size}`).join(', ')}`;
}

// ---------------------------------------------------------------------------------------------------------
// Runs

async function openTarget(label: string, db: Database, close: () => Promise<void>): Promise<Target> {
  await db.migrate(MIGRATIONS);
  const vectors = await openVectorStore({ db });
  await vectors.ensureCollection(embedder.dimensions);
  return { label: `${label} (${vectors.kind} vector store)`, db, vectors, close };
}

async function openPgliteTarget(): Promise<Target> {
  const dataDir = mkdtempSync(join(tmpdir(), 'jarvis-search-latency-'));
  const db = await openDatabase({ service: 'knowledge', dataDir, appRole: 'jarvis_app', poolSize: 1 });
  return openTarget('PGlite', db, async () => {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
}

async function openPostgresTarget(url: string): Promise<Target> {
  const prefix = uniqueSchemaPrefix();
  const db = await openDatabase({ service: 'knowledge', url, dataDir: 'memory://', schemaPrefix: prefix, appRole: 'jarvis_app', poolSize: 4 });
  return openTarget('PostgreSQL', db, async () => {
    await db.close();
    await dropSchemas(url, prefix);
  });
}

async function benchTarget(target: Target, chunkCount: number, vocabulary: Vocabulary, queries: BenchQuery[]): Promise<void> {
  const loadBefore = loadAverage();
  await createKnowledgeBases(target.db);
  const ingestion = await ingestCorpus(target, vocabulary, chunkCount);
  const vectorQueries = target.vectors.kind === 'exact' ? EXACT_VECTOR_QUERIES : queries.length;
  // PGlite has no autovacuum: until ANALYZE its planner takes the tables for nearly empty.
  await printPlans(target, queries[0]!.text, 'before ANALYZE');
  const unanalyzed = await runModes(target, queries.slice(0, QUERIES_BEFORE_ANALYZE), vectorQueries);
  const analyzeStarted = performance.now();
  await analyzeChunks(target.db);
  // analyzeChunks leaves the vector table out, and without its statistics PGlite's planner skips the HNSW index.
  await target.db.withSystem((tx) => tx.exec(`ANALYZE ${target.vectors.kind === 'pgvector' ? 'chunk_vectors' : 'chunk_embeddings'}`));
  const analyzeMs = performance.now() - analyzeStarted;
  await printPlans(target, queries[0]!.text, 'after ANALYZE');
  const analyzed = await runModes(target, queries, vectorQueries);
  const diagnosis = await diagnoseHnsw(target, queries);

  const rates = ingestion.stretchRates.map((rate) => rate.toFixed(0)).join(', ');
  console.log(`\n### ${target.label}, ${thousands(ingestion.chunks)} chunks\n`);
  console.log(`${thousands(ingestion.documents)} documents, ${(ingestion.chunks / ingestion.documents).toFixed(1)} chunks each; ${await storeSizes(target.db)}.`);
  console.log(`Load average ${loadBefore} at the start, ${loadAverage()} at the end.\n`);
  console.log('| import (insert PENDING + worker, 2 jobs at a time) | documents | chunks | s | chunks/s | chunks/s per 10k, in order |');
  console.log('|---|---:|---:|---:|---:|---|');
  console.log(`| whole import | ${thousands(ingestion.documents)} | ${thousands(ingestion.chunks)} | ${(ingestion.wallMs / 1000).toFixed(0)} | ${perSecond(ingestion.chunks, ingestion.wallMs)} | ${rates || '—'} |`);
  console.log(`\nSearch through SearchService, top ${TOP_K} of all ${KNOWLEDGE_BASES} knowledge bases, after ANALYZE of the chunk and vector tables (${(analyzeMs / 1000).toFixed(1)} s):\n`);
  console.log(latencyTable(analyzed).join('\n'));
  console.log(`\nBefore ANALYZE, as the import left the statistics (first ${QUERIES_BEFORE_ANALYZE} queries):\n`);
  console.log(latencyTable(unanalyzed).join('\n'));
  if (diagnosis) console.log(`\n${diagnosis}`);
}

async function benchOn(open: () => Promise<Target>, chunkCount: number, vocabulary: Vocabulary, queries: BenchQuery[]): Promise<void> {
  const target = await open();
  try {
    await benchTarget(target, chunkCount, vocabulary, queries);
  } finally {
    await target.close();
  }
}

async function main(): Promise<void> {
  const vocabulary = buildVocabulary(seededRandom(SEED));
  const queries = buildQueries(vocabulary);
  console.log(`Machine: ${hardware()}.`);
  console.log(
    `Corpus: markdown documents of ${PARAGRAPHS} paragraphs (100–170 words) under 2 headings, Zipf (s=${ZIPF_EXPONENT}) over ` +
      `${ENGLISH_STOPWORDS.size} stopwords + ${thousands(CONTENT_WORDS)} made-up words, ${KNOWLEDGE_BASES} knowledge bases searched together, ` +
      `seed ${SEED}; embedder ${embedder.id}. Queries: ${QUERIES_PER_KIND} each of common (3–5 of the ${COMMON_RANKS[1]} most frequent ` +
      `content words), rare (2–4 of ranks ${thousands(RARE_RANKS[0])}+) and mixed (2 + 2), after ${WARM_UP_QUERIES} warm-up queries per mode.`,
  );
  await benchOn(openPgliteTarget, PGLITE_CHUNKS, vocabulary, queries);
  const url = process.env.DATABASE_URL;
  if (url) await benchOn(() => openPostgresTarget(url), POSTGRES_CHUNKS, vocabulary, queries);
}

await main();
