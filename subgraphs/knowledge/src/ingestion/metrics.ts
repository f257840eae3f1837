/** What knowledge adds to its service's metrics: the ingestion queue's depth and how jobs end. */
import { tenantSchemas, type Database } from '@jarvis/platform/db';
import { Counter, gaugeOnScrape, type ServiceMetrics } from '@jarvis/platform/metrics';
import * as documents from '../documents/store.ts';

export type IngestionMetrics = ReturnType<typeof ingestionMetrics>;

export function ingestionMetrics({ registry }: ServiceMetrics, db: Database) {
  gaugeOnScrape(
    registry,
    { name: 'jarvis_ingestion_queue_depth', help: 'Documents waiting for ingestion (PENDING) or being ingested (PROCESSING), in every tenant schema', labelNames: ['status'] as const },
    async () => {
      const depth = new Map<string, number>([['PENDING', 0], ['PROCESSING', 0]]);
      for (const schema of await tenantSchemas(db)) {
        const counts = await db.withSystem((tx) => documents.unfinishedCounts(tx, schema));
        for (const { status, count } of counts) depth.set(status, depth.get(status)! + count);
      }
      return [...depth].map(([status, count]) => [{ status }, count]);
    },
  );
  return {
    /** `ready`, `failed` (for good), `retry` (handed back to the bus), `superseded` (the document changed meanwhile). */
    jobs: new Counter({ name: 'jarvis_ingestion_jobs_total', help: 'Ingestion jobs by how they ended', labelNames: ['outcome'] as const, registers: [registry] }),
  };
}
