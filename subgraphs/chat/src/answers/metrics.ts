/** What chat adds to its service's metrics: tokens and time to first token per model, and the inference cache's hits. */
import { Counter, Histogram, LATENCY_BUCKETS, type ServiceMetrics } from '@jarvis/platform/metrics';

export type ChatMetrics = ReturnType<typeof chatMetrics>;

export function chatMetrics({ registry, limitRejections }: ServiceMetrics) {
  return {
    tokens: new Counter({
      name: 'jarvis_model_tokens_total',
      help: 'Tokens models consumed (prompt) and produced (completion), by model; cache hits count none',
      labelNames: ['model', 'kind'] as const,
      registers: [registry],
    }),
    timeToFirstToken: new Histogram({
      name: 'jarvis_model_time_to_first_token_seconds',
      help: "From the model call to the answer's first token, fallbacks included, by the model that answered",
      labelNames: ['model'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    cacheLookups: new Counter({
      name: 'jarvis_inference_cache_lookups_total',
      help: 'Inference cache lookups by result (hit or miss) and, for hits, kind (EXACT or SEMANTIC)',
      labelNames: ['result', 'kind'] as const,
      registers: [registry],
    }),
    limitRejections,
  };
}
