/**
 * `npm run bench:workflows` (issue 17): what durability costs a workflow run, on the embedded default (PGlite,
 * in memory as the tests run it and on disk as `npm start` does) and, with DATABASE_URL, on PostgreSQL (schemas of
 * its own, dropped afterwards).
 *
 * 1. Per step: one loop of BENCH_STEPS steps (`host.step(key, async () => ({ i }))`), timed step by step, in four
 *    modes — a plain host (no checkpoint), inside a DBOS workflow (each step checkpointed), and each of those
 *    with the run record the engine writes around a step (RunRecorder.stepStarted + stepFinished in the agents
 *    tables). DBOS is opened by the engine's own openDurableRuntime, with this bench's executor in place of the
 *    interpreter. The modes take turns run by run (BENCH_RUNS each, after one warm-up run each), in one process.
 * 2. Run start: a workflow of one `set` task started through the gateway of an in-process stack (startStack), as
 *    a caller does it: startRun, then runEvents until DONE. BENCH_STARTS starts one at a time, then the same
 *    number from BENCH_STARTERS concurrent callers (one WebSocket each), after a few warm-up starts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite, types } from '@electric-sql/pglite';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { bearer, devLogin, graphql } from '@jarvis/platform/client';
import type { Principal } from '@jarvis/platform/contracts';
import { openDatabase, pgliteTemplate, type Database } from '@jarvis/platform/db';
import { createLogger } from '@jarvis/platform/logger';
import { dropSchemas, testConfig, uniqueSchemaPrefix } from '@jarvis/platform/testing';
import { openDurableRuntime, type DurableRuntime, type RunExecutor } from '../subgraphs/agents/src/runs/durable/runtime.ts';
import type { DurableHost } from '../subgraphs/agents/src/runs/engine/ports.ts';
import { RunRecorder } from '../subgraphs/agents/src/runs/recorder.ts';
import { insertRun } from '../subgraphs/agents/src/runs/store.ts';
import { startStack } from '../scripts/stack.ts';
import { hardware, loadAverage, mean, percentile } from './load.ts';

const STEPS = Number(process.env.BENCH_STEPS ?? 200);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const STARTS = Number(process.env.BENCH_STARTS ?? 50);
const STARTERS = Number(process.env.BENCH_STARTERS ?? 10);
const WARM_UP_STARTS = 5;
const TARGET_P50_MS = 5;
// DBOS writes a run's completion after the executor returns: waited for before closing, so shutdown finds no run under way.
const SETTLE_MS = 1_000;
const MIGRATIONS = fileURLToPath(new URL('../subgraphs/agents/migrations/', import.meta.url));

// The stacks keep limits in memory and events in process: what is measured is the run engine, not Redis or RabbitMQ.
delete process.env.REDIS_URL;
delete process.env.AMQP_URL;

const log = createLogger('bench-workflows', 'warn');
const ms = (value: number) => value.toFixed(2);

/** In memory as the tests run it; on disk (a temporary DATA_DIR) as under `npm start`; PostgreSQL with DATABASE_URL. */
type Backend = { name: string; url?: string; onDisk?: boolean };
const BACKENDS: Backend[] = [
  { name: 'PGlite, in memory' },
  { name: 'PGlite, on disk', onDisk: true },
  ...(process.env.DATABASE_URL ? [{ name: 'PostgreSQL', url: process.env.DATABASE_URL }] : []),
];

/** A data directory and a schema prefix of the backend's own, removed and dropped by `cleanUp`. */
function place(backend: Backend) {
  const dataDir = backend.onDisk ? mkdtempSync(join(tmpdir(), 'jarvis-bench-workflows-')) : undefined;
  const schemaPrefix = backend.url ? uniqueSchemaPrefix() : undefined;
  const cleanUp = async () => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (schemaPrefix) await dropSchemas(backend.url!, schemaPrefix);
  };
  return { dataDir, schemaPrefix, cleanUp };
}

// ── 1. Per step ─────────────────────────────────────────────────────────────────────────────────────────────

const MODES = ['plain', 'checkpoint', 'record', 'checkpoint+record'] as const;
type Mode = (typeof MODES)[number];
const MODE_LABELS: Record<Mode, string> = {
  plain: 'plain host: no checkpoint, no record',
  checkpoint: 'DBOS checkpoint only (best case)',
  record: 'run record only, no checkpoint',
  'checkpoint+record': 'checkpoint + run record, as the engine takes a `call` step (headline)',
};

type Loop = { mode: Mode; tenantId: string; runId: string };

/** As the interpreter takes a `call` task: recorded as started, run as a step, recorded as finished. Each step's wall time. */
async function loop(db: Database, host: Pick<DurableHost, 'step'>, { mode, tenantId, runId }: Loop): Promise<number[]> {
  const recorder = mode.endsWith('record') ? new RunRecorder(db, { runId, tenantId }) : undefined;
  const times: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const key = `/do/${i}/step`;
    const started = performance.now();
    await recorder?.stepStarted({ key, name: `step${i}`, path: key, kind: 'call:bench', input: { i } });
    const output = await host.step(key, async () => ({ i }));
    await recorder?.stepFinished(key, output);
    times.push(performance.now() - started);
  }
  return times;
}

const plainHost: Pick<DurableHost, 'step'> = { step: (_key, work) => work(new AbortController().signal) };

async function stepOverhead(backend: Backend): Promise<Record<Mode, number[]>> {
  const { dataDir, schemaPrefix, cleanUp } = place(backend);
  const db = await openDatabase({ service: 'agents', url: backend.url, dataDir: dataDir ?? 'memory://', schemaPrefix, appRole: 'jarvis_app', poolSize: 10 });
  let system: PGlite | undefined;
  let runtime: DurableRuntime | undefined;
  try {
    await db.migrate(MIGRATIONS);
    const tenantId = randomUUID();
    const definitionId = randomUUID();
    await db.withTenant(tenantId, async (tx) => {
      await tx.query(`INSERT INTO definitions (id, tenant_id, name, kind) VALUES ($1, $2, 'bench', 'WORKFLOW')`, [definitionId, tenantId]);
      await tx.query(`INSERT INTO definition_versions (tenant_id, definition_id, number, source, declared) VALUES ($1, $2, 1, '', '{}')`, [tenantId, definitionId]);
    });
    // The record needs its runs row, as startRun inserts it; checkpoints alone need none.
    const newLoop = async (mode: Mode): Promise<Loop> => {
      const runId = randomUUID();
      if (mode.endsWith('record')) {
        await db.withTenant(tenantId, (tx) => insertRun(tx, { id: runId, tenantId, definitionId, version: 1, label: null, kind: 'WORKFLOW', input: null, startedById: null }));
      }
      return { mode, tenantId, runId };
    };

    const waiting = new Map<string, { resolve(times: number[]): void; reject(error: unknown): void }>();
    const executor: RunExecutor = {
      async execute(spec, host) {
        const waiter = waiting.get(spec.runId)!;
        const times = loop(db, host, spec.input as Loop);
        times.then(waiter.resolve, waiter.reject);
        await times;
        return null;
      },
      executeBranch: () => Promise.reject(new Error('the bench has no branches')),
    };
    // As the engine opens it (engine.ts): a schema beside the agents schema, or a PGlite of its own.
    if (!backend.url) {
      const parsers = { [types.INT8]: (v: string) => v, [types.NUMERIC]: (v: string) => v };
      system = await PGlite.create({ dataDir: dataDir && join(dataDir, 'agents-runs'), loadDataDir: await pgliteTemplate(), parsers });
    }
    const systemDatabase = backend.url ? { url: backend.url, schema: `${db.schema}_runs` } : { pglite: system! };
    const open = await openDurableRuntime({ systemDatabase, executorId: `bench-${randomUUID().slice(0, 8)}`, log }, executor);
    runtime = open;
    const principal: Principal = { tenantId, roles: [], scopes: [], permissions: [], isolation: 'SHARED' };
    const durably = (spec: Loop) =>
      new Promise<number[]>((resolve, reject) => {
        waiting.set(spec.runId, { resolve, reject });
        open.start({ runId: spec.runId, tenantId, principal, kind: 'WORKFLOW', document: {}, input: spec }).catch(reject);
      }).finally(() => waiting.delete(spec.runId));

    const samples = Object.fromEntries(MODES.map((mode) => [mode, [] as number[]])) as Record<Mode, number[]>;
    for (let run = -1; run < RUNS; run++) {
      for (const mode of MODES) {
        const spec = await newLoop(mode);
        const times = mode.startsWith('checkpoint') ? await durably(spec) : await loop(db, plainHost, spec);
        if (run >= 0) samples[mode].push(...times);
      }
    }
    await sleep(SETTLE_MS);
    return samples;
  } finally {
    // DBOS is one per process: closed before the next backend's runtime or stack opens it again.
    await runtime?.close();
    await system?.close();
    await db.close();
    await cleanUp();
  }
}

// ── 2. Run start ────────────────────────────────────────────────────────────────────────────────────────────

const WORKFLOW = `document: { dsl: '1.0.0', namespace: bench, name: bench-set, version: '1.0.0' }
do:
  - mark:
      set:
        done: true
`;
const START = `mutation { startRun(input: { name: "bench-set" }) { id } }`;
const EVENTS = `subscription($id: ID!) { runEvents(runId: $id) { type at } }`;

/**
 * ms from sending startRun to: its answer; the events' `at` (now() in the transaction that wrote them); DONE arriving
 * on runEvents, subscribed once startRun answered.
 */
type Start = { answered: number; stepFinished: number; doneWritten: number; doneSeen: number };
/** cpuPercent: CPU this process (bench client, gateway, subgraphs, DBOS, expression worker) used over the wall time; 100 = one core. */
type Starts = { starters: number; starts: Start[]; seconds: number; cpuPercent: number };

async function runStarts(backend: Backend): Promise<Starts[]> {
  const { dataDir, schemaPrefix, cleanUp } = place(backend);
  // DATABASE_POOL_SIZE at its default (testConfig keeps test stacks at 3 connections).
  const config = testConfig({ name: backend.url ? 'postgres' : 'pglite', url: backend.url, skip: false }, {
    AUTH_DEV_LOGIN: 'true', DATABASE_POOL_SIZE: '10', ...(dataDir && { DATA_DIR: dataDir }), ...(schemaPrefix && { DATABASE_SCHEMA_PREFIX: schemaPrefix }),
  });
  const stack = await startStack(config, { freePorts: true }).catch(async (error: unknown) => {
    await cleanUp();
    throw error;
  });
  const clients: Client[] = [];
  try {
    const slug = `bench-${randomUUID().slice(0, 8)}`;
    const email = `owner@${slug}.test`;
    await graphql(stack.gatewayUrl, `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }`, {
      input: { name: slug, slug, isolation: 'SHARED', plan: 'ENTERPRISE', owner: { email, name: 'Owner' } },
    }, bearer(config.OPERATOR_TOKEN!));
    const headers = bearer(await devLogin(stack.tokenUrl, slug, email));
    const { createDefinition } = await graphql<{ createDefinition: { id: string } }>(stack.gatewayUrl,
      `mutation($input: CreateDefinitionInput!) { createDefinition(input: $input) { id } }`, { input: { name: 'bench-set', kind: 'WORKFLOW', source: WORKFLOW } }, headers);
    await graphql(stack.gatewayUrl, `mutation($id: ID!) { publishDefinition(input: { definitionId: $id, version: 1 }) { name } }`, { id: createDefinition.id }, headers);

    const connect = () =>
      new Promise<Client>((resolve, reject) => {
        const client: Client = createClient({
          url: stack.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: headers.authorization },
          lazy: false, retryAttempts: 0, on: { connected: () => resolve(client), error: reject },
        });
        clients.push(client);
      });

    const start = async (client: Client): Promise<Start> => {
      const sentAt = performance.timeOrigin + performance.now();
      const sent = performance.now();
      const { startRun } = await graphql<{ startRun: { id: string } }>(stack.gatewayUrl, START, {}, headers);
      const answered = performance.now() - sent;
      const written = new Map<string, number>();
      for await (const result of client.iterate<{ runEvents: { type: string; at: string } }>({ query: EVENTS, variables: { id: startRun.id } })) {
        if (result.errors) throw new Error(JSON.stringify(result.errors));
        const { type, at } = result.data!.runEvents;
        if (type === 'ERROR' || type === 'CANCELLED') throw new Error(`run ${startRun.id} ended ${type}`);
        written.set(type, Date.parse(at) - sentAt);
        if (type === 'DONE') return { answered, stepFinished: written.get('STEP_FINISHED')!, doneWritten: written.get('DONE')!, doneSeen: performance.now() - sent };
      }
      throw new Error(`run ${startRun.id}: the events ended before DONE`);
    };

    const measured = async (starters: number): Promise<Starts> => {
      const own = await Promise.all(Array.from({ length: starters }, connect));
      const starts: Start[] = [];
      const began = performance.now();
      const cpu = process.cpuUsage();
      await Promise.all(own.map(async (client) => {
        for (let i = 0; i < STARTS / starters; i++) starts.push(await start(client));
      }));
      const wallMs = performance.now() - began;
      const used = process.cpuUsage(cpu);
      return { starters, starts, seconds: wallMs / 1000, cpuPercent: ((used.user + used.system) / 1000 / wallMs) * 100 };
    };
    const first = await connect();
    for (let i = 0; i < WARM_UP_STARTS; i++) await start(first);
    const results = [await measured(1), await measured(STARTERS)];
    await sleep(SETTLE_MS);
    return results;
  } finally {
    await Promise.allSettled(clients.map((client) => client.dispose()));
    await stack.close();
    await cleanUp();
  }
}

// ── Report ──────────────────────────────────────────────────────────────────────────────────────────────────

const loadAtStart = loadAverage();
const began = performance.now();
const perStep: { backend: Backend; samples: Record<Mode, number[]> }[] = [];
const runStart: { backend: Backend; results: Starts[] }[] = [];
for (const backend of BACKENDS) perStep.push({ backend, samples: await stepOverhead(backend) });
for (const backend of BACKENDS) runStart.push({ backend, results: await runStarts(backend) });

console.log(`\n${hardware()}; load average (1 / 5 / 15 min) ${loadAtStart} at the start, ${loadAverage()} at the end; ${((performance.now() - began) / 1000).toFixed(0)} s`);
console.log(`\nPer step: ${STEPS} steps a run, ${RUNS} runs per mode after one warm-up run each, modes taking turns (${STEPS * RUNS} steps per row)\n`);
console.log('| backend | mode | p50 ms | p99 ms | mean ms | p50 added to plain | p99 added to plain |');
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const { backend, samples } of perStep) {
  const plain = samples.plain;
  for (const mode of MODES) {
    const times = samples[mode];
    const [p50, p99] = [percentile(times, 0.5), percentile(times, 0.99)];
    const added = (value: number, base: number) => (mode === 'plain' ? '—' : ms(value - base));
    console.log(`| ${backend.name} | ${MODE_LABELS[mode]} | ${ms(p50)} | ${ms(p99)} | ${ms(mean(times))} | ${added(p50, percentile(plain, 0.5))} | ${added(p99, percentile(plain, 0.99))} |`);
  }
}
for (const { backend, samples } of perStep.filter(({ backend }) => backend.url)) {
  for (const mode of ['checkpoint', 'checkpoint+record'] as const) {
    const p50 = percentile(samples[mode], 0.5);
    console.log(`\ntarget ≤ ${TARGET_P50_MS} ms p50 per step on ${backend.name}, ${mode}: ${ms(p50)} ms — ${p50 <= TARGET_P50_MS ? 'met' : 'NOT met'}`);
  }
}

console.log(`\nRun start: a one-\`set\`-task workflow through the gateway, ${STARTS} starts per row after ${WARM_UP_STARTS} warm-up starts; ms from sending startRun, p50 / p99\n`);
console.log('| backend | concurrent callers | startRun answered | first STEP_FINISHED written | DONE written | DONE seen on runEvents | runs/s | CPU % of this process |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const { backend, results } of runStart) {
  for (const { starters, starts, seconds, cpuPercent } of results) {
    const cell = (pick: (start: Start) => number) => `${ms(percentile(starts.map(pick), 0.5))} / ${ms(percentile(starts.map(pick), 0.99))}`;
    console.log(
      `| ${backend.name} | ${starters} | ${cell((s) => s.answered)} | ${cell((s) => s.stepFinished)} | ${cell((s) => s.doneWritten)} | ${cell((s) => s.doneSeen)} | ${(starts.length / seconds).toFixed(1)} | ${cpuPercent.toFixed(0)} |`,
    );
  }
}
