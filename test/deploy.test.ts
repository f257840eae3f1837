/**
 * The deployment and observability configuration against the code it deploys: docker-compose.yml and what it
 * mounts from deploy/ (OpenTelemetry collector, Prometheus, Grafana), and the Kubernetes manifests in deploy/k8s/.
 * Each check names a reference that can go stale: an image, a command, a port, a variable, a selector, a URL,
 * a metric family.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { type ISecret, Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import {
  configSchema,
  createServiceMetrics,
  defaultPort,
  defaultSubgraphUrl,
  loadConfig,
  SERVICE_NAMES,
  servicePort,
  SUBGRAPHS,
  type Config,
  type Database,
  type ServiceName,
} from '@jarvis/platform';
import { createGatewayMetrics } from '../gateway/src/metrics.ts';
import { chatMetrics } from '../subgraphs/chat/src/answers/metrics.ts';
import { ingestionMetrics } from '../subgraphs/knowledge/src/ingestion/metrics.ts';

const ROOT = new URL('../', import.meta.url);
const COMPOSE_FILE = new URL('docker-compose.yml', ROOT);
const K8S_DIR = new URL('deploy/k8s/', ROOT);
const DASHBOARD_FILE = new URL('deploy/grafana/dashboards/jarvis.json', ROOT);
const DATASOURCES_DIR = new URL('deploy/grafana/provisioning/datasources/', ROOT);
const DASHBOARD_PROVIDERS_DIR = new URL('deploy/grafana/provisioning/dashboards/', ROOT);

const hasDockerCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;

/** The OpenTelemetry SDK's standard variables (the specification's environment variables, traces side). */
const OTEL_VARIABLES = new Set([
  'OTEL_SDK_DISABLED',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_LOG_LEVEL',
  'OTEL_PROPAGATORS',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_TIMEOUT',
  'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
  'OTEL_EXPORTER_OTLP_COMPRESSION',
  'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION',
  'OTEL_EXPORTER_OTLP_CERTIFICATE',
  'OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE',
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_EXPORT_TIMEOUT',
  'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
  'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT',
  'OTEL_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_SPAN_EVENT_COUNT_LIMIT',
  'OTEL_SPAN_LINK_COUNT_LIMIT',
]);

/** A variable a Jarvis container may be given: one platform/src/config.ts reads, or a standard OpenTelemetry one. */
function assertReadVariable(name: string, where: string) {
  assert.ok(name in configSchema.shape || OTEL_VARIABLES.has(name), `${where} sets ${name}, which Jarvis does not read`);
}

const read = (url: URL) => readFileSync(url, 'utf8');

/** `load`'s result, computed on the first call that returns: each file is read and parsed once for the whole run. */
function once<T>(load: () => T): () => T {
  let loaded: { value: T } | undefined;
  return () => (loaded ??= { value: load() }).value;
}

/** The Dockerfile's CMD without its service name: what every command runs, naming the service last. */
const dockerfileCommand = once((): string[] => {
  const match = /^CMD (\[.*\])\s*$/m.exec(read(new URL('Dockerfile', ROOT)));
  assert.ok(match, 'the Dockerfile has no exec-form CMD');
  const cmd = JSON.parse(match[1]!) as string[];
  assert.ok((SERVICE_NAMES as readonly string[]).includes(cmd.at(-1)!), `the Dockerfile's CMD runs ${cmd.at(-1)}, which serve.ts does not accept`);
  return cmd.slice(0, -1);
});

// ---------------------------------------------------------------------------------------------------------------
// docker-compose.yml

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, unknown> | string[];
  volumes?: string[];
}

const loadCompose = once(() => parse(read(COMPOSE_FILE), { merge: true }) as { services: Record<string, ComposeService> });

/** What compose hands the container: `${NAME:-default}` as its default, as with nothing exported. */
function composeEnv(service: ComposeService): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([name, value]) => [
      name,
      String(value).replace(/\$\{\w+(?::?-([^}]*))?\}/g, (_all, fallback: string | undefined) => fallback ?? ''),
    ]),
  );
}

/** Bind mounts (`./host:/container[:ro]`) of a compose service, host paths resolved from the repository root. */
function bindMounts(service: ComposeService): Array<{ source: URL; target: string }> {
  return (service.volumes ?? [])
    .filter((volume) => volume.startsWith('./'))
    .map((volume) => {
      const [source, target] = volume.split(':');
      return { source: new URL(source!, ROOT), target: target! };
    });
}

/** The compose service whose image starts with `prefix`: exactly one. */
function composeServiceByImage(services: Record<string, ComposeService>, prefix: string): [string, ComposeService] {
  const found = Object.entries(services).filter(([, service]) => service.image?.startsWith(prefix));
  assert.equal(found.length, 1, `expected one compose service running ${prefix}*, found ${found.length}`);
  return found[0]!;
}

/** A file a compose service mounts, parsed. */
function mountedFile(service: ComposeService, target: string): unknown {
  const mount = bindMounts(service).find((m) => m.target === target);
  assert.ok(mount, `nothing is mounted at ${target}`);
  return parse(read(mount.source));
}

function hostPort(address: string): { host: string; port: number } {
  const match = /^(?:[a-z]+:\/\/)?([^:/]+):(\d+)\/?/.exec(address);
  assert.ok(match, `${address} is not host:port`);
  return { host: match[1]!, port: Number(match[2]) };
}

test('docker-compose.yml is valid (docker-compose config -q)', { skip: !hasDockerCompose && 'docker-compose is not installed' }, () => {
  const result = spawnSync('docker-compose', ['-f', COMPOSE_FILE.pathname, 'config', '-q'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
});

test('every Jarvis service in docker-compose.yml runs a real service with variables Jarvis reads', () => {
  const compose = loadCompose();
  for (const name of SERVICE_NAMES) {
    const service = compose.services[name];
    assert.ok(service, `${name} is missing`);
    assert.deepEqual(service.command, [...dockerfileCommand(), name]);
    for (const variable of Object.keys(service.environment ?? {})) assertReadVariable(variable, name);
    assert.match(service.healthcheck!.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${defaultPort(name)}/readyz`));
  }
  const gateway = compose.services.gateway!;
  const overrides = gateway.environment!.SUBGRAPH_URLS!;
  for (const { name } of SUBGRAPHS) {
    assert.ok(overrides.includes(`${name}=${defaultSubgraphUrl(name, name)}`), `gateway does not reach ${name}`);
    assert.ok((gateway.depends_on as Record<string, unknown>)[name], `gateway does not wait for ${name}`);
  }
  // Chat asks knowledge for passages; without the URL it would ask its own container.
  const chat = loadConfig(composeEnv(compose.services.chat!));
  assert.equal(chat.SUBGRAPH_URLS.knowledge, defaultSubgraphUrl('knowledge', 'knowledge'), 'chat does not reach knowledge');
});

test('docker-compose.yml: traces go to the collector and on to Jaeger; Prometheus scrapes every service; Grafana is provisioned', () => {
  const { services } = loadCompose();
  for (const service of Object.values(services)) {
    for (const { source } of bindMounts(service)) assert.ok(existsSync(source), `${source.pathname} is mounted but does not exist`);
  }

  // Collector: OTLP in on every interface of its container, at the port the services send to.
  const [collectorName, collector] = composeServiceByImage(services, 'otel/opentelemetry-collector-contrib');
  const collectorConfig = mountedFile(collector, '/etc/otelcol-contrib/config.yaml') as {
    receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } };
    processors?: Record<string, unknown>;
    exporters: Record<string, { endpoint?: string }>;
    service: { pipelines: { traces: { receivers: string[]; processors?: string[]; exporters: string[] } } };
  };
  const { grpc, http } = collectorConfig.receivers.otlp.protocols;
  assert.deepEqual(hostPort(grpc.endpoint), { host: '0.0.0.0', port: 4317 });
  assert.deepEqual(hostPort(http.endpoint), { host: '0.0.0.0', port: 4318 });
  for (const name of SERVICE_NAMES) {
    const env = composeEnv(services[name]!);
    assert.equal(env.OTEL_SERVICE_NAME, `jarvis-${name}`, `${name}: OTEL_SERVICE_NAME`);
    assert.ok(env.OTEL_EXPORTER_OTLP_ENDPOINT, `${name} does not export traces`);
    const target = hostPort(env.OTEL_EXPORTER_OTLP_ENDPOINT);
    assert.deepEqual(target, { host: collectorName, port: hostPort(http.endpoint).port }, `${name} sends OTLP/HTTP elsewhere than the collector`);
  }
  const traces = collectorConfig.service.pipelines.traces;
  assert.ok(traces.receivers.includes('otlp'));
  for (const processor of traces.processors ?? []) assert.ok(collectorConfig.processors?.[processor], `processor ${processor} is not defined`);
  const [jaegerName, jaeger] = composeServiceByImage(services, 'jaegertracing/');
  assert.equal(String(jaeger.environment?.COLLECTOR_OTLP_ENABLED), 'true');
  assert.ok(traces.exporters.length > 0);
  for (const exporter of traces.exporters) {
    const endpoint = collectorConfig.exporters[exporter]?.endpoint;
    assert.ok(endpoint, `exporter ${exporter} is not defined`);
    assert.deepEqual(hostPort(endpoint), { host: jaegerName, port: 4317 }, `exporter ${exporter} does not reach Jaeger's OTLP gRPC port`);
  }

  // Prometheus: /metrics on each Jarvis service's port.
  const [prometheusName, prometheus] = composeServiceByImage(services, 'prom/prometheus');
  const scrape = mountedFile(prometheus, '/etc/prometheus/prometheus.yml') as {
    scrape_configs: Array<{ metrics_path?: string; static_configs?: Array<{ targets: string[] }> }>;
  };
  const targets = scrape.scrape_configs
    .filter((job) => (job.metrics_path ?? '/metrics') === '/metrics')
    .flatMap((job) => (job.static_configs ?? []).flatMap((c) => c.targets));
  for (const name of SERVICE_NAMES) {
    const port = servicePort(loadConfig(composeEnv(services[name]!)), name);
    assert.ok(targets.includes(`${name}:${port}`), `Prometheus does not scrape ${name}:${port}/metrics`);
  }

  // Grafana: the data source reaches Prometheus; the provider loads the directory the dashboards are mounted at.
  const [, grafana] = composeServiceByImage(services, 'grafana/grafana');
  const provisioning = bindMounts(grafana).find((m) => m.target === '/etc/grafana/provisioning');
  assert.equal(provisioning?.source.href, new URL('deploy/grafana/provisioning', ROOT).href);
  const prometheusSource = datasources().find((source) => source.type === 'prometheus');
  assert.ok(prometheusSource, 'no Prometheus data source');
  assert.deepEqual(hostPort(prometheusSource.url), { host: prometheusName, port: 9090 });
  const dashboardsMount = bindMounts(grafana).find((m) => m.source.href === new URL('deploy/grafana/dashboards', ROOT).href);
  assert.ok(dashboardsMount, 'deploy/grafana/dashboards is not mounted into Grafana');
  const providers = readdirSync(DASHBOARD_PROVIDERS_DIR).flatMap(
    (file) => (parse(read(new URL(file, DASHBOARD_PROVIDERS_DIR))) as { providers: Array<{ options: { path: string } }> }).providers,
  );
  assert.ok(
    providers.some((provider) => provider.options.path === dashboardsMount.target),
    `no dashboard provider loads ${dashboardsMount.target}`,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Grafana dashboard

interface Datasource {
  uid: string;
  type: string;
  url: string;
}

const datasources = once((): Datasource[] =>
  readdirSync(DATASOURCES_DIR).flatMap((file) => (parse(read(new URL(file, DATASOURCES_DIR))) as { datasources: Datasource[] }).datasources),
);

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

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes manifests

// Every kind the manifests may use, by apiVersion/kind, with the model that validates it.
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

interface Manifest {
  file: string;
  object: { apiVersion?: string; kind?: string; metadata?: { name?: string } };
}

function manifestFiles(): string[] {
  return readdirSync(K8S_DIR)
    .filter((file) => /\.ya?ml$/.test(file) && file !== 'kustomization.yaml')
    .sort();
}

const loadManifests = once((): Manifest[] =>
  manifestFiles().flatMap((file) =>
    parseAllDocuments(read(new URL(file, K8S_DIR))).flatMap((document) => {
      assert.deepEqual(document.errors, [], `${file} does not parse`);
      const object = document.toJS() as Manifest['object'] | null;
      return object === null ? [] : [{ file, object }];
    }),
  ),
);

const cluster = once(() => {
  const objects = loadManifests().map((m) => m.object);
  return {
    deployments: objects.filter(Deployment.is),
    services: objects.filter(Service.is),
    configMaps: objects.filter(ConfigMap.is),
    secrets: objects.filter(Secret.is),
    hpas: objects.filter(HorizontalPodAutoscaler.is),
    pdbs: objects.filter(PodDisruptionBudget.is),
  };
});
type Cluster = ReturnType<typeof cluster>;

const nameOf = (object: { metadata?: { name?: string } }) => object.metadata?.name ?? '';

/** The one container of a Jarvis Deployment. */
function containerOf(deployment: IDeployment): IContainer {
  const containers = deployment.spec?.template.spec?.containers ?? [];
  assert.equal(containers.length, 1, `${nameOf(deployment)} should run one container`);
  return containers[0]!;
}

/** Which service a Deployment runs: the last word of its command. */
function serviceOf(deployment: IDeployment): ServiceName {
  return containerOf(deployment).command?.at(-1) as ServiceName;
}

function deploymentRunning(c: Cluster, name: ServiceName): IDeployment {
  const found = c.deployments.filter((deployment) => serviceOf(deployment) === name);
  assert.equal(found.length, 1, `expected one Deployment running ${name}, found ${found.length}`);
  return found[0]!;
}

/** Whether `selector` (matchLabels) picks the pods of `deployment`. */
function selects(selector: Record<string, string> | undefined, deployment: IDeployment): boolean {
  const labels = deployment.spec?.template.metadata?.labels ?? {};
  return !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

function secretValues(secret: ISecret): Record<string, string> {
  const decoded = Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
  return { ...decoded, ...(secret.stringData ?? {}) };
}

/** The environment a container starts with: its envFrom sources, then its env, references resolved. */
function containerEnv(c: Cluster, container: IContainer): Record<string, string> {
  const where = `container ${container.name}`;
  const configMap = (name: string) => {
    const found = c.configMaps.find((map) => nameOf(map) === name);
    assert.ok(found, `${where} reads ConfigMap ${name}, which is not declared`);
    return found.data ?? {};
  };
  const secret = (name: string) => {
    const found = c.secrets.find((s) => nameOf(s) === name);
    assert.ok(found, `${where} reads Secret ${name}, which is not declared`);
    return secretValues(found);
  };
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    assert.ok(!source.prefix, `${where}: envFrom prefixes are not expected`);
    if (source.configMapRef) Object.assign(env, configMap(source.configMapRef.name!));
    else if (source.secretRef) Object.assign(env, secret(source.secretRef.name!));
    else assert.fail(`${where}: envFrom without a ConfigMap or Secret`);
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    let value: string | undefined;
    if (!from) value = variable.value ?? '';
    else if (from.configMapKeyRef) value = configMap(from.configMapKeyRef.name!)[from.configMapKeyRef.key];
    else if (from.secretKeyRef) value = secret(from.secretKeyRef.name!)[from.secretKeyRef.key];
    else assert.fail(`${where}: ${variable.name} comes from something other than a value, ConfigMap or Secret`);
    assert.ok(value !== undefined, `${where}: ${variable.name} refers to a key that does not exist`);
    env[variable.name] = value;
  }
  return env;
}

/** The configuration the service in a Deployment runs with, parsed by the platform's own schema. */
function deploymentConfig(c: Cluster, deployment: IDeployment): Config {
  return loadConfig(containerEnv(c, containerOf(deployment)));
}

/** A container port by number or name. */
function containerPort(container: IContainer, port: number | string | undefined): number | undefined {
  return container.ports?.find((p) => (typeof port === 'number' ? p.containerPort === port : p.name === port))?.containerPort;
}

/** cpu ("250m", "2") in millicores, memory ("512Mi", "1Gi") in bytes. */
function quantity(value: string | number | undefined): number {
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(value));
  assert.ok(match, `cannot read the quantity ${value}`);
  const unit = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

test('every manifest under deploy/k8s is a valid Kubernetes object of a known kind', () => {
  const manifests = loadManifests();
  assert.ok(manifests.length > 0);
  const seen = new Set<string>();
  for (const { file, object } of manifests) {
    const type = `${object.apiVersion}/${object.kind}`;
    const Model = MODELS[type];
    assert.ok(Model, `${file}: ${type} is not a kind this test validates (add its kubernetes-models class to MODELS)`);
    assert.doesNotThrow(() => new Model(object as never).validate(), `${file}: ${type} ${nameOf(object)} is invalid`);
    assert.ok(nameOf(object), `${file}: a ${type} without a name`);
    const key = `${type}/${nameOf(object)}`;
    assert.ok(!seen.has(key), `${file}: ${key} is declared twice`);
    seen.add(key);
  }
});

test('kustomization.yaml lists every manifest and renames the image the Deployments run', () => {
  const kustomization = parse(read(new URL('kustomization.yaml', K8S_DIR))) as {
    apiVersion: string;
    kind: string;
    resources: string[];
    images?: Array<{ name: string }>;
  };
  assert.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  assert.equal(kustomization.kind, 'Kustomization');
  assert.deepEqual([...kustomization.resources].sort(), manifestFiles());
  const images = new Set(cluster().deployments.map((deployment) => containerOf(deployment).image!.split(':')[0]));
  for (const image of kustomization.images ?? []) assert.ok(images.has(image.name), `kustomization renames ${image.name}, which no Deployment runs`);
});

test('a Deployment per service runs the image docker-compose builds, with the command serve.ts accepts', () => {
  const c = cluster();
  const { services } = loadCompose();
  const images = new Set(SERVICE_NAMES.map((name) => services[name]!.image));
  assert.equal(images.size, 1, 'compose builds one image for every service');
  const [image] = images;
  assert.ok(services.gateway!.build, 'compose builds the image from the Dockerfile');
  for (const deployment of c.deployments) {
    const container = containerOf(deployment);
    assert.equal(container.image, image, `${nameOf(deployment)} runs ${container.image}, not the image compose builds`);
    assert.deepEqual(container.command?.slice(0, -1), dockerfileCommand(), `${nameOf(deployment)}: not the Dockerfile's command`);
    assert.ok(SERVICE_NAMES.includes(serviceOf(deployment)), `${nameOf(deployment)} runs ${serviceOf(deployment)}, which serve.ts does not accept`);
    assert.equal(container.args, undefined, `${nameOf(deployment)}: args would be appended to the service name`);
  }
  for (const name of SERVICE_NAMES) deploymentRunning(c, name);
});

test('every variable a container gets is one Jarvis reads, and the configuration it makes is valid', () => {
  const c = cluster();
  for (const map of c.configMaps) for (const key of Object.keys(map.data ?? {})) assertReadVariable(key, `ConfigMap ${nameOf(map)}`);
  for (const secret of c.secrets) for (const key of Object.keys(secretValues(secret))) assertReadVariable(key, `Secret ${nameOf(secret)}`);
  for (const deployment of c.deployments) {
    const name = serviceOf(deployment);
    const env = containerEnv(c, containerOf(deployment));
    for (const variable of Object.keys(env)) assertReadVariable(variable, name);
    const config = loadConfig(env);
    assert.equal(config.HOST, '0.0.0.0', `${name} must listen on every interface of its pod`);
    assert.ok(config.INTERNAL_AUTH_SECRET, `${name}: serve.ts needs INTERNAL_AUTH_SECRET`);
    assert.equal(config.NODE_ENV, 'production');
    // Several replicas share limits (Redis); subgraphs share a database and the bus.
    assert.ok(config.REDIS_URL, `${name}: REDIS_URL`);
    if (name !== 'gateway') {
      assert.ok(config.DATABASE_URL, `${name}: without DATABASE_URL each pod would keep its own embedded database`);
      assert.ok(config.AMQP_URL, `${name}: without AMQP_URL events would not leave the pod`);
    }
    assert.equal(env.OTEL_SERVICE_NAME, `jarvis-${name}`);
    if (env.OTEL_EXPORTER_OTLP_ENDPOINT) assert.ok(URL.canParse(env.OTEL_EXPORTER_OTLP_ENDPOINT), 'OTEL_EXPORTER_OTLP_ENDPOINT is a URL');
  }
});

test("container ports, probes and Prometheus annotations are the port each service listens on", () => {
  const c = cluster();
  for (const name of SERVICE_NAMES) {
    const deployment = deploymentRunning(c, name);
    const container = containerOf(deployment);
    const port = servicePort(deploymentConfig(c, deployment), name);
    assert.deepEqual(container.ports?.map((p) => p.containerPort), [port], `${name} listens on ${port}`);
    const probes = { startupProbe: '/healthz', livenessProbe: '/healthz', readinessProbe: '/readyz' } as const;
    for (const [probe, path] of Object.entries(probes) as Array<[keyof typeof probes, string]>) {
      const get = container[probe]?.httpGet;
      if (probe === 'startupProbe' && !container[probe]) continue;
      assert.ok(get, `${name} has no ${probe}`);
      assert.equal(get.path, path, `${name}: ${probe} path`);
      assert.equal(containerPort(container, get.port), port, `${name}: ${probe} does not probe port ${port}`);
    }
    const annotations = deployment.spec?.template.metadata?.annotations ?? {};
    assert.equal(annotations['prometheus.io/scrape'], 'true', `${name} is not scraped`);
    assert.equal(annotations['prometheus.io/port'], String(port), `${name}: prometheus.io/port`);
    assert.equal(annotations['prometheus.io/path'] ?? '/metrics', '/metrics');
  }
});

test('Deployments select their own pods, and each Service selects one Deployment and targets a port it declares', () => {
  const c = cluster();
  for (const deployment of c.deployments) {
    const selector = deployment.spec?.selector.matchLabels;
    assert.ok(selects(selector, deployment), `${nameOf(deployment)}'s selector does not match its own pods`);
    const others = c.deployments.filter((other) => other !== deployment && selects(selector, other));
    assert.deepEqual(others.map(nameOf), [], `${nameOf(deployment)}'s selector also matches other Deployments' pods`);
    for (const spread of deployment.spec?.template.spec?.topologySpreadConstraints ?? []) {
      assert.ok(selects(spread.labelSelector?.matchLabels, deployment), `${nameOf(deployment)}: topology spread counts other pods`);
    }
  }
  for (const service of c.services) {
    const targets = c.deployments.filter((deployment) => selects(service.spec?.selector, deployment));
    assert.equal(targets.length, 1, `Service ${nameOf(service)} selects ${targets.length} Deployments`);
    const container = containerOf(targets[0]!);
    for (const port of service.spec?.ports ?? []) {
      assert.ok(containerPort(container, port.targetPort ?? port.port), `Service ${nameOf(service)} targets port ${port.targetPort}, which ${nameOf(targets[0]!)} does not declare`);
    }
  }
  for (const name of SERVICE_NAMES) {
    const deployment = deploymentRunning(c, name);
    assert.ok(c.services.some((service) => selects(service.spec?.selector, deployment)), `no Service reaches ${name}`);
  }
});

/** Follows a URL inside the cluster: the Service its host names, and the service that Service's port reaches. */
function resolveUrl(c: Cluster, url: string): ServiceName | undefined {
  const { hostname, port } = new URL(url);
  const service = c.services.find((s) => nameOf(s) === hostname.split('.')[0]);
  if (!service) return undefined;
  const servicePortSpec = service.spec?.ports?.find((p) => p.port === Number(port || 80));
  assert.ok(servicePortSpec, `${url}: Service ${nameOf(service)} has no port ${port}`);
  const deployment = c.deployments.find((d) => selects(service.spec?.selector, d));
  assert.ok(deployment, `${url}: Service ${nameOf(service)} selects no Deployment`);
  const target = containerPort(containerOf(deployment), servicePortSpec.targetPort ?? servicePortSpec.port);
  const name = serviceOf(deployment);
  assert.equal(target, servicePort(deploymentConfig(c, deployment), name), `${url} reaches ${name} on a port it does not listen on`);
  return name;
}

test('URLs between services name the Service of the right service, at the port it listens on', () => {
  const c = cluster();
  const gateway = deploymentConfig(c, deploymentRunning(c, 'gateway'));
  for (const { name } of SUBGRAPHS) {
    const url = gateway.SUBGRAPH_URLS[name];
    assert.ok(url, `the gateway has no URL for ${name}`);
    assert.equal(resolveUrl(c, url), name, `the gateway's URL for ${name} reaches another service`);
    assert.equal(new URL(url).pathname, '/graphql');
  }
  // Chat asks knowledge for passages; without the URL it would ask its own pod.
  const chat = deploymentConfig(c, deploymentRunning(c, 'chat'));
  assert.ok(chat.SUBGRAPH_URLS.knowledge, 'chat has no URL for knowledge');
  assert.equal(resolveUrl(c, chat.SUBGRAPH_URLS.knowledge), 'knowledge');
  // The gateway trusts the issuer tenancy is: same iss and aud, its JWKS and token endpoint.
  const tenancy = deploymentConfig(c, deploymentRunning(c, 'tenancy'));
  assert.equal(gateway.JWT_ISSUER, tenancy.TOKEN_ISSUER, "the gateway trusts an issuer other than tenancy's");
  assert.equal(gateway.JWT_AUDIENCE, tenancy.TOKEN_AUDIENCE);
  assert.ok(gateway.JWT_JWKS_URL && gateway.TOKEN_EXCHANGE_URL);
  assert.equal(resolveUrl(c, gateway.JWT_JWKS_URL), 'tenancy');
  assert.equal(new URL(gateway.JWT_JWKS_URL).pathname, '/.well-known/jwks.json');
  assert.equal(resolveUrl(c, gateway.TOKEN_EXCHANGE_URL), 'tenancy');
  assert.equal(new URL(gateway.TOKEN_EXCHANGE_URL).pathname, '/oauth/token');
});

test('autoscalers and disruption budgets name existing Deployments that can honour them', () => {
  const c = cluster();
  const byName = (kind: string, name: string | undefined) => {
    const found = c.deployments.find((deployment) => nameOf(deployment) === name);
    assert.ok(found, `${kind} targets Deployment ${name}, which does not exist`);
    return found;
  };
  const minReplicas = new Map<IDeployment, number>(c.deployments.map((d) => [d, d.spec?.replicas ?? 1]));
  for (const hpa of c.hpas) {
    const ref = hpa.spec?.scaleTargetRef;
    assert.equal(`${ref?.apiVersion}/${ref?.kind}`, 'apps/v1/Deployment', `HPA ${nameOf(hpa)} scales something other than a Deployment`);
    const deployment = byName(`HPA ${nameOf(hpa)}`, ref?.name);
    assert.equal(deployment.spec?.replicas, undefined, `${nameOf(deployment)}: spec.replicas would fight its HPA on every apply`);
    const cpu = hpa.spec?.metrics?.find((metric) => metric.type === 'Resource' && metric.resource?.name === 'cpu');
    assert.ok(cpu, `HPA ${nameOf(hpa)} does not scale on CPU`);
    assert.ok(containerOf(deployment).resources?.requests?.cpu, `HPA ${nameOf(hpa)} scales on CPU utilisation, but ${nameOf(deployment)} requests no CPU`);
    assert.ok((hpa.spec?.minReplicas ?? 1) <= hpa.spec!.maxReplicas);
    minReplicas.set(deployment, hpa.spec?.minReplicas ?? 1);
  }
  for (const name of ['gateway', 'chat', 'knowledge'] as const) {
    const deployment = deploymentRunning(c, name);
    assert.ok(c.hpas.some((hpa) => hpa.spec?.scaleTargetRef.name === nameOf(deployment)), `${name} has no HPA`);
  }
  for (const pdb of c.pdbs) {
    const targets = c.deployments.filter((deployment) => selects(pdb.spec?.selector?.matchLabels, deployment));
    assert.equal(targets.length, 1, `PDB ${nameOf(pdb)} covers ${targets.length} Deployments`);
    const replicas = minReplicas.get(targets[0]!)!;
    const { minAvailable, maxUnavailable } = pdb.spec ?? {};
    assert.ok(typeof minAvailable === 'number' || typeof maxUnavailable === 'number', `PDB ${nameOf(pdb)}: give a number of pods`);
    // With fewer pods than that, the budget would block every drain, or leave nothing serving.
    if (typeof minAvailable === 'number') assert.ok(replicas > minAvailable, `PDB ${nameOf(pdb)} blocks drains at ${replicas} replicas`);
    if (typeof maxUnavailable === 'number') assert.ok(replicas > maxUnavailable, `PDB ${nameOf(pdb)} lets every pod go at ${replicas} replicas`);
  }
  for (const deployment of c.deployments) {
    assert.ok(c.pdbs.some((pdb) => selects(pdb.spec?.selector?.matchLabels, deployment)), `${nameOf(deployment)} has no PodDisruptionBudget`);
  }
});

test('pods get resources within their limits, and time to drain before they are killed', () => {
  const c = cluster();
  for (const deployment of c.deployments) {
    const name = serviceOf(deployment);
    const container = containerOf(deployment);
    const { requests = {}, limits = {} } = container.resources ?? {};
    for (const resource of ['cpu', 'memory']) {
      assert.ok(requests[resource] && limits[resource], `${name}: ${resource} request and limit`);
      assert.ok(quantity(requests[resource]) <= quantity(limits[resource]), `${name}: ${resource} request above its limit`);
    }
    // The preStop pause and serve.ts's own shutdown deadline both fit in the grace period.
    const preStop = container.lifecycle?.preStop?.exec?.command;
    const pause = !preStop ? 0 : preStop[0] === 'sleep' ? Number(preStop[1]) : Number.NaN;
    assert.ok(Number.isFinite(pause), `${name}: preStop should be a plain sleep`);
    const shutdownSeconds = deploymentConfig(c, deployment).SHUTDOWN_TIMEOUT_MS / 1000;
    const grace = deployment.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
    assert.ok(pause + shutdownSeconds < grace, `${name}: preStop ${pause} s + SHUTDOWN_TIMEOUT_MS ${shutdownSeconds} s do not fit in ${grace} s`);
  }
});
