/**
 * The Kubernetes manifests in deploy/k8s/ against the code they deploy and docker-compose.yml's image: valid
 * objects, the command, variables, ports, probes, selectors, URLs between services, scaling and resources.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { loadConfig, SERVICE_NAMES, servicePort, SUBGRAPHS, type ServiceName } from '@jarvis/platform/config';
import {
  assertReadVariable,
  cluster,
  type Cluster,
  containerEnv,
  containerOf,
  containerPort,
  deploymentConfig,
  deploymentRunning,
  dockerfileCommand,
  K8S_DIR,
  loadCompose,
  loadManifests,
  manifestFiles,
  nameOf,
  quantity,
  read,
  secretValues,
  selects,
  serviceOf,
} from './deploy-config.ts';

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
