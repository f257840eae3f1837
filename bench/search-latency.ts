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
 *
 * This file runs the bench and reports each target; the corpus, queries, import, searches and plans are in
 * search-latency/.
 */
import { ENGLISH_STOPWORDS } from '@jarvis/platform/text';
import { analyzeChunks } from '../subgraphs/knowledge/src/chunks/store.ts';
import { hardware, loadAverage } from './load.ts';
import { buildVocabulary, COMMON_RANKS, CONTENT_WORDS, PARAGRAPHS, SEED, seededRandom, ZIPF_EXPONENT, type Vocabulary } from './search-latency/corpus.ts';
import { createKnowledgeBases, ingestCorpus } from './search-latency/ingestion.ts';
import { diagnoseHnsw, printPlans } from './search-latency/plans.ts';
import { buildQueries, QUERIES_PER_KIND, RARE_RANKS, type BenchQuery } from './search-latency/queries.ts';
import { latencyTable, perSecond, storeSizes, thousands } from './search-latency/report.ts';
import { runModes, TOP_K, WARM_UP_QUERIES } from './search-latency/search.ts';
import { embedder, openPgliteTarget, openPostgresTarget, type Target } from './search-latency/target.ts';
import { KNOWLEDGE_BASES } from './search-latency/tenant.ts';

const PGLITE_CHUNKS = Number(process.env.BENCH_CHUNKS ?? 100_000);
const POSTGRES_CHUNKS = Number(process.env.BENCH_POSTGRES_CHUNKS ?? 20_000);
const EXACT_VECTOR_QUERIES = Number(process.env.BENCH_EXACT_QUERIES ?? 40);
const QUERIES_BEFORE_ANALYZE = 20;

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
