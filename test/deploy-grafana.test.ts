/**
 * The Grafana dashboard against the metrics it draws: every family the services register is shown, queried as
 * its type allows, with labels and values the family has, from a provisioned data source.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SUBGRAPHS } from '@jarvis/platform/config';
import type { Database } from '@jarvis/platform/db';
import { createServiceMetrics } from '@jarvis/platform/metrics';
import { createGatewayMetrics } from '../gateway/src/metrics.ts';
import { chatMetrics } from '../subgraphs/chat/src/answers/metrics.ts';
import { ingestionMetrics } from '../subgraphs/knowledge/src/ingestion/metrics.ts';
import { datasources, read, ROOT } from './deploy-config.ts';

const DASHBOARD_FILE = new URL('deploy/grafana/dashboards/jarvis.json', ROOT);

type MetricType = 'counter' | 'histogram' | 'gauge';

/**
 * The families the dashboard must show, with the labels each carries (besides `service`, on every series) and,
 * where fixed, their values.
 */
const FAMILIES: Record<string, { type: MetricType; labels: Record<string, readonly string[] | null> }> = {
  jarvis_graphql_requests_total: { type: 'counter', labels: { operation: null, outcome: ['success', 'error', 'rejected'] } },
  jarvis_graphql_request_duration_seconds: { type: 'histogram', labels: { operation: null, outcome: ['success', 'error', 'rejected'] } },
  jarvis_graphql_errors_total: { type: 'counter', labels: { code: null } },
  jarvis_gateway_subgraph_fetch_duration_seconds: {
    type: 'histogram',
    labels: { subgraph: SUBGRAPHS.map((s) => s.name), outcome: ['success', 'error'] },
  },
  jarvis_limit_rejections_total: { type: 'counter', labels: { limit: null, code: ['RATE_LIMITED', 'QUOTA_EXCEEDED'] } },
  jarvis_gateway_active_subscriptions: { type: 'gauge', labels: {} },
  jarvis_gateway_websocket_connections: { type: 'gauge', labels: {} },
  jarvis_model_tokens_total: { type: 'counter', labels: { model: null, kind: ['prompt', 'completion'] } },
  jarvis_model_time_to_first_token_seconds: { type: 'histogram', labels: { model: null } },
  jarvis_inference_cache_lookups_total: { type: 'counter', labels: { result: ['hit', 'miss'], kind: null } },
  jarvis_ingestion_queue_depth: { type: 'gauge', labels: { status: ['PENDING', 'PROCESSING'] } },
  jarvis_ingestion_jobs_total: { type: 'counter', labels: { outcome: ['ready', 'failed', 'retry', 'superseded'] } },
  process_cpu_seconds_total: { type: 'counter', labels: {} },
  nodejs_eventloop_lag_p99_seconds: { type: 'gauge', labels: {} },
  process_resident_memory_bytes: { type: 'gauge', labels: {} },
};
/** Labels Prometheus adds to every scraped series, or every series of Jarvis carries. */
const COMMON_LABELS = ['service', 'instance', 'job'];

/** A metric name in an expression, as its family: histograms are queried through their _bucket, _sum, _count. */
function familyOf(metric: string): { family: string; suffix?: string } | undefined {
  if (FAMILIES[metric]) return { family: metric };
  const match = /^(.*)_(bucket|sum|count)$/.exec(metric);
  if (match && FAMILIES[match[1]!]?.type === 'histogram') return { family: match[1]!, suffix: match[2]! };
  return undefined;
}

/** Every value of a member named `key`, at any depth of `json`. */
function valuesOf(json: unknown, key: string): unknown[] {
  const found: unknown[] = [];
  JSON.stringify(json, (name, value: unknown) => {
    if (name === key) found.push(value);
    return value;
  });
  return found;
}

test('the Grafana dashboard shows every metric family, queried as its type allows, from the provisioned data source', () => {
  const dashboard = JSON.parse(read(DASHBOARD_FILE)) as { uid: string; panels: unknown[] };
  assert.ok(dashboard.uid && dashboard.panels.length > 0);
  const expressions = valuesOf(dashboard, 'expr').filter((expr) => typeof expr === 'string');
  assert.ok(expressions.length > 0, 'no panel has a query');

  for (const [family, { type }] of Object.entries(FAMILIES)) {
    const name = family.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const shown = expressions.some((expr) => {
      switch (type) {
        case 'counter':
          return new RegExp(`\\b(rate|irate|increase)\\(\\s*${name}(\\{[^}]*\\})?\\[`).test(expr);
        case 'histogram':
          return expr.includes('histogram_quantile(') && new RegExp(`\\b${name}_bucket\\b`).test(expr);
        case 'gauge':
          return new RegExp(`\\b${name}\\b(?!_)`).test(expr);
      }
    });
    assert.ok(shown, `no panel shows ${family} (a ${type}${type === 'counter' ? ', through rate()' : type === 'histogram' ? ', through histogram_quantile over _bucket' : ''})`);
  }

  for (const expr of expressions) {
    // Every metric named is a known family (a typo would draw an empty panel).
    const metrics = [...expr.matchAll(/\b((?:jarvis|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
    const families = metrics.map((metric) => {
      const known = familyOf(metric);
      assert.ok(known, `${metric} in "${expr}" is not a metric family Jarvis serves`);
      return known;
    });
    // Label matchers name labels the family has, with values it takes.
    for (const [, metric, matchers] of expr.matchAll(/\b([a-z_][a-z0-9_]*)\{([^}]*)\}/g)) {
      const known = familyOf(metric!);
      if (!known) continue;
      const spec = FAMILIES[known.family]!;
      for (const matcher of matchers!.split(',').map((m) => m.trim()).filter(Boolean)) {
        const parsed = /^([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"([^"]*)"$/.exec(matcher);
        assert.ok(parsed, `cannot read matcher ${matcher} in "${expr}"`);
        const [, label, op, value] = parsed;
        const allowed = [...Object.keys(spec.labels), ...COMMON_LABELS, ...(known.suffix === 'bucket' ? ['le'] : [])];
        assert.ok(allowed.includes(label!), `${metric} has no label ${label} ("${expr}")`);
        const values = spec.labels[label!];
        if (op === '=' && values) assert.ok(values.includes(value!), `${metric}'s ${label} is never "${value}" ("${expr}")`);
      }
    }
    // Aggregations group by labels the series have.
    const labels = new Set([...COMMON_LABELS, 'le', ...families.flatMap(({ family }) => Object.keys(FAMILIES[family]!.labels))]);
    for (const [, by] of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
      for (const label of by!.split(',').map((l) => l.trim()).filter(Boolean)) {
        assert.ok(labels.has(label), `"${expr}" groups by ${label}, which its series do not have`);
      }
    }
  }

  // Every data source the dashboard names is provisioned.
  const uids = new Set(datasources().map((source) => source.uid));
  const named = valuesOf(dashboard, 'datasource').flatMap((source) => (source && typeof source === 'object' && 'uid' in source ? [String(source.uid)] : []));
  assert.ok(named.length > 0);
  for (const uid of named) assert.ok(uids.has(uid), `the dashboard uses data source ${uid}, which is not provisioned`);
});

test('the families the dashboard expects are the ones the services register, with those labels', async () => {
  // Every family on one registry: platform's, the gateway's, chat's and knowledge's (its gauge reads nothing here).
  const metrics = createServiceMetrics('deploy-test');
  createGatewayMetrics(metrics.registry);
  chatMetrics(metrics);
  ingestionMetrics(metrics, {} as Database);
  for (const [family, { type, labels }] of Object.entries(FAMILIES)) {
    const served = metrics.registry.getSingleMetric(family) as unknown as { type?: string; labelNames?: string[] } | undefined;
    assert.ok(served, `${family} is not registered by any service`);
    const servedType = (await metrics.registry.getSingleMetricAsString(family)).match(/# TYPE \S+ (\w+)/)?.[1];
    assert.equal(servedType, type, `${family}: the services serve a ${servedType}, the dashboard expects a ${type}`);
    if (family.startsWith('jarvis_')) assert.deepEqual([...(served.labelNames ?? [])].sort(), Object.keys(labels).sort(), `${family}'s labels`);
  }
});
