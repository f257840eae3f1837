import { QUOTA_OVERRIDES_MIGRATIONS, quotaOverridesSubscription } from '@jarvis/platform/quota-overrides';
import { defineSubgraph, type ResourceServices } from '@jarvis/platform/subgraph';
import type { Embedder } from '@jarvis/platform/text';
import { DocumentService } from './documents/service.ts';
import { openDocumentStatusFeed, type DocumentStatusFeed } from './documents/status-feed.ts';
import { ingest, INGEST_GROUP, INGEST_TOPIC } from './ingestion/worker.ts';
import { ingestionMetrics, type IngestionMetrics } from './ingestion/metrics.ts';
import { startIngestionSweep } from './ingestion/sweep.ts';
import { KnowledgeBaseService } from './knowledge-bases/service.ts';
import { openEmbedder, rerankerOf } from './retrieval/models.ts';
import type { Reranker } from './retrieval/rerank.ts';
import type { KnowledgeContext } from './context.ts';
import { resolvers } from './resolvers.ts';
import { SearchService } from './search/service.ts';
import { openVectorStore, type VectorStore } from './vectors/index.ts';

export interface KnowledgeResources {
  embedder: Embedder;
  reranker: Reranker;
  /** Opened on first use, so a store that is slow to come up does not hold the whole subgraph back. */
  vectors: () => Promise<VectorStore>;
  outbox: { notify(): void };
  statusFeed: DocumentStatusFeed;
  /** How long an unfinished job may show no sign of life before the sweep queues it again. */
  staleJobMs: number;
  metrics: IngestionMetrics;
  sweep(): Promise<number>;
}

/** Documents untouched this long while PENDING or PROCESSING count as lost jobs and are queued again. */
const STALE_JOB_MS = 60_000;

export async function openKnowledgeResources(
  { db, config, log, outbox, metrics }: ResourceServices,
  overrides: Partial<Pick<KnowledgeResources, 'embedder' | 'reranker'>> & { staleJobMs?: number } = {},
): Promise<KnowledgeResources & { close(): Promise<void> }> {
  const embedder = overrides.embedder ?? (await openEmbedder(config));
  let opened: Promise<VectorStore> | undefined;
  const vectors = () =>
    (opened ??= openVectorStore({ db, qdrantUrl: config.QDRANT_URL }).then(async (store) => {
      if (store.fallbackReason) log.warn({ reason: store.fallbackReason }, 'chunk vectors are searched exactly, without an index');
      await store.ensureCollection(embedder.dimensions);
      return store;
    })).catch((error: unknown) => {
      opened = undefined;
      throw error;
    });
  const staleAfterMs = overrides.staleJobMs ?? STALE_JOB_MS;
  const statusFeed = await openDocumentStatusFeed(db, log);
  const sweeper = startIngestionSweep({ db, log, outbox, staleAfterMs, everyMs: Math.max(1_000, staleAfterMs / 5) });
  return {
    embedder,
    reranker: overrides.reranker ?? rerankerOf(config),
    vectors,
    outbox,
    statusFeed,
    staleJobMs: staleAfterMs,
    metrics: ingestionMetrics(metrics, db),
    sweep: sweeper.sweep,
    async close() {
      sweeper.stop();
      await statusFeed.close();
      if (opened) await (await opened.catch(() => undefined))?.close();
    },
  };
}

export const knowledgeSubgraph = defineSubgraph<KnowledgeContext, KnowledgeResources>({
  name: 'knowledge',
  resolvers,
  migrations: new URL('../migrations/', import.meta.url),
  moduleMigrations: [QUOTA_OVERRIDES_MIGRATIONS],
  resources: (services) => openKnowledgeResources(services),
  outbox: true,
  acceptsUploads: true,
  subscriptions: [
    {
      topic: INGEST_TOPIC,
      group: INGEST_GROUP,
      handle: (event, { db, log, resources }) => resources.vectors().then((vectors) => ingest(event, { ...resources, db, log, vectors })),
    },
    quotaOverridesSubscription('knowledge-quotas'),
  ],
  context: (base, { resources }) => {
    const knowledgeBases = new KnowledgeBaseService(base.db, base.principal, resources.vectors, resources.outbox);
    return {
      ...base,
      knowledgeBases,
      documents: new DocumentService(base.db, base.principal, knowledgeBases, resources),
      searches: new SearchService(base.db, base.principal, knowledgeBases, resources, base.log),
    };
  },
});
