/**
 * docker-compose.yml and what it mounts from deploy/ (OpenTelemetry collector, Prometheus, Grafana) against the
 * code it runs. Each check names a reference that can go stale: an image, a command, a port, a variable, a URL.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { defaultPort, defaultSubgraphUrl, loadConfig, SERVICE_NAMES, servicePort, SUBGRAPHS } from '@jarvis/platform/config';
import { assertReadVariable, COMPOSE_FILE, type ComposeService, datasources, dockerfileCommand, loadCompose, read, ROOT } from './deploy-config.ts';

const DASHBOARD_PROVIDERS_DIR = new URL('deploy/grafana/provisioning/dashboards/', ROOT);

const hasDockerCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;

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
