/**
 * The agents subgraph's run engine, opened once per process: DBOS with its system tables beside the agents
 * tables (or, embedded, in a PGlite of its own under DATA_DIR), this replica's lease, and what runs a run — the
 * workflow interpreter or an agent's loop — with the calls a run makes as its caller.
 */
import { hostname } from 'node:os';
import { mkdirSync } from 'node:fs';
import { PGlite, types } from '@electric-sql/pglite';
import { internalAuthSecret, type Config } from '@jarvis/platform/config';
import { principalSigner, usageEvent, USAGE_TOPIC } from '@jarvis/platform/contracts';
import { isNewPgliteDir, pgliteDir, pgliteTemplate, scopeToPrincipal, type Database } from '@jarvis/platform/db';
import type { Logger } from '@jarvis/platform/logger';
import { OutboundGuard } from '@jarvis/platform/outbound';
import { writeEvent } from '@jarvis/platform/outbox';
import { uuidOf } from '@jarvis/platform/ids';
import { subgraphClient, subgraphUrl } from '@jarvis/platform/subgraph-client';
import { extractTraceContext, traced } from '@jarvis/platform/telemetry';
import { performance } from 'node:perf_hooks';
import type { AgentDeclaration } from '../validation/index.ts';
import { runAgent } from './agent-loop.ts';
import { RunCalls } from './calls.ts';
import { openDurableRuntime, isCancellation, type DurableRuntime, type RunSpec, type SystemDatabase } from './durable/runtime.ts';
import { beat, keepLease } from './durable/lease.ts';
import { runtimeError, WorkflowError } from './engine/errors.ts';
import { Interpreter, nestedWorkflow, type InterpreterDeps } from './engine/interpreter.ts';
import type { Branch, DurableHost, Recorder } from './engine/ports.ts';
import { createExpressionEvaluator, type ExpressionEvaluator } from './expressions.ts';
import { RunRecorder } from './recorder.ts';
import { runsByIds } from './store.ts';
import { loadDefinition } from './versions.ts';
import type { RunMetrics } from './metrics.ts';

export interface RunEngine {
  start(spec: RunSpec): Promise<void>;
  send(runId: string, topic: string, message: unknown, idempotencyKey: string): Promise<void>;
  cancel(runId: string): Promise<void>;
  readonly heartbeatMs: number;
  close(): Promise<void>;
}

export interface RunEngineServices {
  db: Database;
  config: Config;
  log: Logger;
  outbox: { notify(): void };
  metrics: RunMetrics;
}

export async function openRunEngine(services: RunEngineServices): Promise<RunEngine> {
  const { db, config, log } = services;
  const executorId = config.AGENTS_EXECUTOR_ID ?? hostname();
  const expressions = createExpressionEvaluator();
  const signer = principalSigner(internalAuthSecret(config));
  const knowledge = subgraphClient({ name: 'knowledge', url: subgraphUrl(config, 'knowledge'), signer });
  const chat = subgraphClient({ name: 'chat', url: subgraphUrl(config, 'chat'), signer, timeoutMs: 120_000 });
  const guard = new OutboundGuard({ allowHttp: config.AGENTS_OUTBOUND_ALLOW_HTTP, allowedHosts: config.OUTBOUND_ALLOWED_HOSTS, timeoutMs: 30_000 });
  const system = await systemDatabase(db, config);
  const executor = new Executor({ db, expressions, knowledge, chat, guard, maxSteps: config.AGENTS_MAX_STEPS_PER_RUN, log, outbox: services.outbox, metrics: services.metrics });
  let runtime: DurableRuntime;
  try {
    // Alive before DBOS recovers this id's runs: no other replica may take them meanwhile.
    await beat(db, executorId);
    runtime = await openDurableRuntime({ systemDatabase: system.database, executorId, log }, executor);
  } catch (error) {
    await Promise.all([expressions.close(), guard.close(), system.close()]);
    throw error;
  }
  const lease = keepLease({ db, executorId, leaseMs: config.AGENTS_LEASE_MS, log, resumeRunsOf: (dead) => runtime.resumeRunsOf(dead) });
  return {
    start: (spec) => runtime.start(spec),
    send: (runId, topic, message, key) => runtime.send(runId, topic, message, key),
    cancel: (runId) => runtime.cancel(runId),
    heartbeatMs: config.AGENTS_HEARTBEAT_MS,
    async close() {
      executor.stopping = true;
      await lease.stop();
      await runtime.close();
      await Promise.all([expressions.close(), guard.close(), system.close()]);
    },
  };
}

/** On PostgreSQL, a schema beside the agents schema; embedded, a PGlite of its own (DBOS needs several sessions' worth of work). */
async function systemDatabase(db: Database, config: Config): Promise<{ database: SystemDatabase; close(): Promise<void> }> {
  if (db.kind === 'postgres' && config.DATABASE_URL) return { database: { url: config.DATABASE_URL, schema: `${db.schema}_runs` }, close: async () => {} };
  const dataDir = pgliteDir(config.DATA_DIR, 'agents-runs');
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pglite = await PGlite.create({
    dataDir,
    loadDataDir: isNewPgliteDir(dataDir) ? await pgliteTemplate() : undefined,
    // As pg reads them, which DBOS expects.
    parsers: { [types.INT8]: (value: string) => value, [types.NUMERIC]: (value: string) => value },
  });
  return { database: { pglite }, close: () => pglite.close() };
}

interface ExecutorDeps {
  db: Database;
  expressions: ExpressionEvaluator;
  knowledge: ReturnType<typeof subgraphClient>;
  chat: ReturnType<typeof subgraphClient>;
  guard: OutboundGuard;
  maxSteps: number;
  log: Logger;
  outbox: { notify(): void };
  metrics: RunMetrics;
}

/** Runs a run: the workflow's tasks or the agent's loop, recorded as it goes; ends it DONE, ERROR or CANCELLED. */
class Executor {
  /** Set while the process shuts down: what fails then fails for that reason, and the run is resumed after a restart. */
  stopping = false;

  constructor(private readonly deps: ExecutorDeps) {}

  execute(spec: RunSpec, host: DurableHost): Promise<unknown> {
    const attributes = { 'jarvis.run.id': spec.runId, 'jarvis.run.kind': spec.kind, 'jarvis.tenant.id': spec.tenantId };
    return traced('agents.run', { parent: extractTraceContext(spec.trace ?? {}), attributes }, () => this.carryOn(spec, this.timed(host)));
  }

  /** Steps measured and traced when they really run (a replay's checkpoints are not). */
  private timed(host: DurableHost): DurableHost {
    return {
      ...host,
      step: (key, work, options) =>
        host.step(
          key,
          (signal) => {
            const started = performance.now();
            const kind = options?.kind ?? 'step';
            return traced(`agents.step ${kind}`, { attributes: { 'jarvis.run.step': key } }, () => work(signal)).finally(() =>
              this.deps.metrics.stepTook(kind, (performance.now() - started) / 1000),
            );
          },
          options,
        ),
    };
  }

  private async carryOn(spec: RunSpec, host: DurableHost): Promise<unknown> {
    const db = this.scoped(spec);
    const recorder = new RunRecorder(db, spec);
    const done = this.deps.metrics.runStarted(spec.kind);
    await recorder.started();
    try {
      const output =
        spec.kind === 'AGENT'
          ? (await runAgent(spec.document as AgentDeclaration, spec.input, { key: '', path: '' }, this.agentDeps(spec, host, recorder, this.calls(spec)))).output
          : await this.interpreter(spec, host, recorder).run(spec.input);
      await recorder.ended('DONE', { output });
      done('DONE');
      return output;
    } catch (error) {
      if (this.stopping) throw error;
      if (isCancellation(error)) {
        await recorder.ended('CANCELLED', {});
        done('CANCELLED');
        throw error;
      }
      const failure = WorkflowError.from(error) ?? runtimeError('the run failed unexpectedly', 'INTERNAL');
      if (!WorkflowError.from(error)) this.deps.log.error({ err: error, runId: spec.runId }, 'a run failed unexpectedly');
      await recorder.ended('ERROR', { error: { code: failure.code, message: failure.message, path: failure.instance ?? '' } });
      done('ERROR');
      return null;
    } finally {
      if (!this.stopping) await this.recordUsage(spec);
    }
  }

  executeBranch(spec: RunSpec, branch: Branch, host: DurableHost): Promise<unknown> {
    const recorder = new RunRecorder(this.scoped(spec), spec);
    return this.interpreter(spec, this.timed(host), recorder, branch.context).branch(branch);
  }

  private interpreter(spec: RunSpec, host: DurableHost, recorder: RunRecorder, context?: unknown): Interpreter {
    const calls = this.calls(spec);
    const agents = {
      run: async (args: Record<string, unknown>, at: { key: string; path: string }) => {
        const loaded = await host.step(`${at.key}/load`, () => calls.loadAgent(String(args.agent), args.label as string | undefined));
        return runAgent(loaded, args.input ?? null, at, this.agentDeps(spec, host, recorder, calls));
      },
    };
    return new Interpreter(spec.document, { ...this.interpreterDeps(spec, host, recorder, calls), agents }, context);
  }

  private interpreterDeps(spec: RunSpec, host: DurableHost, recorder: Recorder, calls: RunCalls): Omit<InterpreterDeps, 'agents'> {
    return { host, calls, recorder, expressions: this.deps.expressions, runId: spec.runId, maxSteps: this.deps.maxSteps, deadline: spec.deadline };
  }

  private agentDeps(spec: RunSpec, host: DurableHost, recorder: RunRecorder, calls: RunCalls) {
    return {
      host,
      calls,
      recorder,
      runId: spec.runId,
      runWorkflow: async (name: string, label: string, input: unknown, key: string) => {
        const document = await host.step(`${key}/load`, () => calls.loadWorkflow(name, label));
        return nestedWorkflow(document, name, key, {
          ...this.interpreterDeps(spec, host, recorder, calls),
          agents: { run: () => Promise.reject(runtimeError('a workflow an agent runs cannot run agents itself', 'UNSUPPORTED_CALL')) },
        }).run(input);
      },
    };
  }

  private calls(spec: RunSpec): RunCalls {
    const db = this.scoped(spec);
    return new RunCalls({
      runId: spec.runId,
      principal: spec.principal,
      knowledge: this.deps.knowledge,
      chat: this.deps.chat,
      guard: this.deps.guard,
      loadDefinition: (name, version) => loadDefinition(db, spec.tenantId, name, version),
    });
  }

  private scoped(spec: RunSpec): Database {
    return scopeToPrincipal(this.deps.db, spec.principal, { dedicatedSchemas: true });
  }

  /** The run's tool calls and the run itself, in the ledger once: the events' ids come from the run's. */
  private async recordUsage(spec: RunSpec): Promise<void> {
    const db = this.scoped(spec);
    await db.withTenant(spec.tenantId, async (tx) => {
      const [run] = await runsByIds(tx, [spec.runId]);
      if (!run) return;
      const isolation = spec.principal.isolation;
      await writeEvent(tx, USAGE_TOPIC, usageEvent(spec.tenantId, { metric: 'RUNS', quantity: 1, userId: run.startedById, isolation }, uuidOf(`run:${spec.runId}:runs`)));
      if (run.toolCalls > 0) {
        await writeEvent(tx, USAGE_TOPIC, usageEvent(spec.tenantId, { metric: 'TOOL_CALLS', quantity: run.toolCalls, userId: run.startedById, isolation }, uuidOf(`run:${spec.runId}:tool-calls`)));
      }
    });
    this.deps.outbox.notify();
  }
}
