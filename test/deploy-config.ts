/**
 * The deployment and observability configuration as the deploy tests read it: the files at the repository root
 * (Dockerfile, docker-compose.yml) and under deploy/, each read and parsed once; the Kubernetes manifests as a
 * cluster of typed objects, with what a container in it is given; and the check that a variable is one Jarvis reads.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { type ISecret, Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { configSchema, loadConfig, SERVICE_NAMES, type Config, type ServiceName } from '@jarvis/platform/config';

export const ROOT = new URL('../', import.meta.url);
export const COMPOSE_FILE = new URL('docker-compose.yml', ROOT);
export const K8S_DIR = new URL('deploy/k8s/', ROOT);
const DATASOURCES_DIR = new URL('deploy/grafana/provisioning/datasources/', ROOT);

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

/** A variable a Jarvis container may be given: one platform/src/config/environment.ts reads, or a standard OpenTelemetry one. */
export function assertReadVariable(name: string, where: string) {
  assert.ok(name in configSchema.shape || OTEL_VARIABLES.has(name), `${where} sets ${name}, which Jarvis does not read`);
}

export const read = (url: URL) => readFileSync(url, 'utf8');

/** `load`'s result, computed on the first call that returns: each file is read and parsed once for a test file's whole run. */
function once<T>(load: () => T): () => T {
  let loaded: { value: T } | undefined;
  return () => (loaded ??= { value: load() }).value;
}

/** The Dockerfile's CMD without its service name: what every command runs, naming the service last. */
export const dockerfileCommand = once((): string[] => {
  const match = /^CMD (\[.*\])\s*$/m.exec(read(new URL('Dockerfile', ROOT)));
  assert.ok(match, 'the Dockerfile has no exec-form CMD');
  const cmd = JSON.parse(match[1]!) as string[];
  assert.ok((SERVICE_NAMES as readonly string[]).includes(cmd.at(-1)!), `the Dockerfile's CMD runs ${cmd.at(-1)}, which serve.ts does not accept`);
  return cmd.slice(0, -1);
});

// ---------------------------------------------------------------------------------------------------------------
// docker-compose.yml and Grafana

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, unknown> | string[];
  volumes?: string[];
}

export const loadCompose = once(() => parse(read(COMPOSE_FILE), { merge: true }) as { services: Record<string, ComposeService> });

interface Datasource {
  uid: string;
  type: string;
  url: string;
}

export const datasources = once((): Datasource[] =>
  readdirSync(DATASOURCES_DIR).flatMap((file) => (parse(read(new URL(file, DATASOURCES_DIR))) as { datasources: Datasource[] }).datasources),
);

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes manifests

interface Manifest {
  file: string;
  object: { apiVersion?: string; kind?: string; metadata?: { name?: string } };
}

export function manifestFiles(): string[] {
  return readdirSync(K8S_DIR)
    .filter((file) => /\.ya?ml$/.test(file) && file !== 'kustomization.yaml')
    .sort();
}

export const loadManifests = once((): Manifest[] =>
  manifestFiles().flatMap((file) =>
    parseAllDocuments(read(new URL(file, K8S_DIR))).flatMap((document) => {
      assert.deepEqual(document.errors, [], `${file} does not parse`);
      const object = document.toJS() as Manifest['object'] | null;
      return object === null ? [] : [{ file, object }];
    }),
  ),
);

export const cluster = once(() => {
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
export type Cluster = ReturnType<typeof cluster>;

export const nameOf = (object: { metadata?: { name?: string } }) => object.metadata?.name ?? '';

/** The one container of a Jarvis Deployment. */
export function containerOf(deployment: IDeployment): IContainer {
  const containers = deployment.spec?.template.spec?.containers ?? [];
  assert.equal(containers.length, 1, `${nameOf(deployment)} should run one container`);
  return containers[0]!;
}

/** Which service a Deployment runs: the last word of its command. */
export function serviceOf(deployment: IDeployment): ServiceName {
  return containerOf(deployment).command?.at(-1) as ServiceName;
}

export function deploymentRunning(c: Cluster, name: ServiceName): IDeployment {
  const found = c.deployments.filter((deployment) => serviceOf(deployment) === name);
  assert.equal(found.length, 1, `expected one Deployment running ${name}, found ${found.length}`);
  return found[0]!;
}

/** Whether `selector` (matchLabels) picks the pods of `deployment`. */
export function selects(selector: Record<string, string> | undefined, deployment: IDeployment): boolean {
  const labels = deployment.spec?.template.metadata?.labels ?? {};
  return !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

export function secretValues(secret: ISecret): Record<string, string> {
  const decoded = Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
  return { ...decoded, ...(secret.stringData ?? {}) };
}

/** The environment a container starts with: its envFrom sources, then its env, references resolved. */
export function containerEnv(c: Cluster, container: IContainer): Record<string, string> {
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
    // The pod's own name (a replica's stable id): a valid example of what the kubelet fills in.
    else if (from.fieldRef?.fieldPath === 'metadata.name') value = `${container.name}-7d9f8b6c5-x2k4p`;
    else assert.fail(`${where}: ${variable.name} comes from something other than a value, ConfigMap, Secret or the pod's name`);
    assert.ok(value !== undefined, `${where}: ${variable.name} refers to a key that does not exist`);
    env[variable.name] = value;
  }
  return env;
}

/** The configuration the service in a Deployment runs with, parsed by the platform's own schema. */
export function deploymentConfig(c: Cluster, deployment: IDeployment): Config {
  return loadConfig(containerEnv(c, containerOf(deployment)));
}

/** A container port by number or name. */
export function containerPort(container: IContainer, port: number | string | undefined): number | undefined {
  return container.ports?.find((p) => (typeof port === 'number' ? p.containerPort === port : p.name === port))?.containerPort;
}

/** cpu ("250m", "2") in millicores, memory ("512Mi", "1Gi") in bytes. */
export function quantity(value: string | number | undefined): number {
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(value));
  assert.ok(match, `cannot read the quantity ${value}`);
  const unit = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}
