/**
 * Runs survive their process: the services run as `npm start` runs them (child processes), on the embedded
 * database and on PostgreSQL. A run is killed with SIGKILL between two model calls and while it waits; started
 * again, it carries on without repeating the completed call (the OpenAI-compatible server sees each call once),
 * and an approval given after the restart finishes it. On PostgreSQL, a second replica of the agents subgraph
 * that dies mid-run has its run resumed by the live one once the dead one's lease runs out.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { graphql } from '@jarvis/platform/client';
import { loadConfig, type Config } from '@jarvis/platform/config';
import { BUILT_IN_ROLES, PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { databaseVariants, dropSchemas, freePort, freeServicePorts, uniqueSchemaPrefix, waitFor, type DatabaseVariant } from '@jarvis/platform/testing';
import { startFakeOpenAI, type FakeOpenAI } from '../subgraphs/chat/test/fake-openai.ts';
import { launchProcesses, type ProcessStack } from '../scripts/processes.ts';
import type { Stack } from '../scripts/stack.ts';
import { as, signUp, type Member } from './helpers.ts';

const MODEL = 'durable-model';
const SERVE = fileURLToPath(new URL('../scripts/serve.ts', import.meta.url));
// At the top level: it closes after the whole file.
const fake: FakeOpenAI = await startFakeOpenAI();
fake.script(MODEL, { kind: 'answer', tokens: ['a', 'n', 's', 'w', 'e', 'r'] });

const workflow = (name: string, pauseMs: number, approval: boolean) => `document: { dsl: '1.0.0', namespace: e2e, name: ${name}, version: '1.0.0' }
do:
  - first:
      call: jarvis.model
      with:
        model: ${MODEL}
        prompt: first call
  - pause:
      wait: { milliseconds: ${pauseMs} }
  - second:
      call: jarvis.model
      with:
        model: ${MODEL}
        prompt: second call
${
  approval
    ? `  - approval:
      listen:
        to:
          one:
            with:
              type: jarvis.approval
`
    : ''
}  - finish:
      set:
        first: \${ .text }
`;

interface Launched {
  processes: ProcessStack;
  stack: Stack & { config: Config };
}

const RUN = `query($id: ID!) { run(id: $id) { status error { code message } steps { name status } } }`;
type RunView = { status: string; error: { code: string } | null; steps: { name: string; status: string }[] };

for (const variant of databaseVariants()) {
  describe(`runs survive SIGKILL of their process, on ${variant.name}`, { skip: variant.skip, timeout: 300_000 }, () => {
    let env: Record<string, string>;
    let config: Config;
    let dataDir: string;
    let prefix: string | undefined;
    const launched: ProcessStack[] = [];
    const extra: ChildProcess[] = [];

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'jarvis-durable-'));
      prefix = variant.url ? uniqueSchemaPrefix() : undefined;
      env = {
        PATH: process.env.PATH!,
        ...(await freeServicePorts()),
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        SEED_DEMO: 'false',
        AUTH_DEV_LOGIN: 'true',
        INTERNAL_AUTH_SECRET: randomBytes(32).toString('base64url'),
        OPERATOR_TOKEN: randomBytes(32).toString('base64url'),
        OPENAI_BASE_URL: fake.baseURL,
        OPENAI_API_KEY: 'test-key',
        CHAT_MODELS: JSON.stringify([{ name: MODEL, provider: 'openai', model: MODEL, costPer1kPromptTokens: 0.01, costPer1kCompletionTokens: 0.03, contextWindow: 8192, quality: 5 }]),
        AGENTS_LEASE_MS: '1500',
        AGENTS_EXECUTOR_ID: 'replica-a',
        ...(variant.url ? { DATABASE_URL: variant.url, DATABASE_SCHEMA_PREFIX: prefix!, DATABASE_POOL_SIZE: '3' } : {}),
      };
      config = loadConfig(env);
    });
    after(async () => {
      for (const child of extra) child.kill('SIGKILL');
      await Promise.all(launched.map((processes) => processes.stop().catch(() => undefined)));
      if (variant.url && prefix) await dropSchemas(variant.url, prefix);
      rmSync(dataDir, { recursive: true, force: true });
    });

    async function start(): Promise<Launched> {
      const processes = await launchProcesses(config, { env });
      launched.push(processes);
      const subgraphUrls = Object.fromEntries(['tenancy', 'knowledge', 'chat', 'usage', 'agents'].map((name) => [name, `${processes.baseUrl(name as never)}/graphql`]));
      const stack = { gatewayUrl: processes.gatewayUrl, subgraphUrls, tokenUrl: `${processes.baseUrl('tenancy')}/oauth/token`, config, close: () => processes.stop() };
      return { processes, stack };
    }

    /** SIGKILL to the process the subgraphs share: no shutdown, no last write; then the rest is stopped. */
    async function kill(processes: ProcessStack): Promise<void> {
      process.kill(processes.pidOf('agents')!, 'SIGKILL');
      await processes.stop();
    }

    const view = async (stack: Launched['stack'], member: Member, id: string) => (await as<{ run: RunView }>(stack, member, RUN, { id })).run;
    const until = (stack: Launched['stack'], member: Member, id: string, what: string, ok: (run: RunView) => boolean) =>
      waitFor(() => view(stack, member, id), `run ${what}`, { until: (run) => ok(run), timeoutMs: 60_000, intervalMs: 100 });
    const stepDone = (name: string) => (run: RunView) => run.steps.some((step) => step.name === name && step.status === 'DONE');

    async function publish(stack: Launched['stack'], owner: Member, name: string, source: string) {
      const { createDefinition } = await as<{ createDefinition: { id: string } }>(stack, owner, `mutation($input: CreateDefinitionInput!) { createDefinition(input: $input) { id } }`, {
        input: { name, kind: 'WORKFLOW', source },
      });
      await as(stack, owner, `mutation($id: ID!) { publishDefinition(input: { definitionId: $id, version: 1 }) { name } }`, { id: createDefinition.id });
    }

    test('killed between two model calls and again while waiting, a run carries on where it was and each model call is made once', async () => {
      const calls = fake.requestsFor(MODEL).length;
      const first = await start();
      const owner = await signUp(first.stack, 'durable', { pastGateway: true });
      await publish(first.stack, owner, 'durable', workflow('durable', 4_000, true));
      const { startRun } = await as<{ startRun: { id: string } }>(first.stack, owner, `mutation { startRun(input: { name: "durable" }) { id } }`);
      await until(first.stack, owner, startRun.id, 'past its first model call', stepDone('first'));
      const beforeKill = fake.requestsFor(MODEL).length;
      assert.equal(beforeKill - calls, 1, 'one model call before the kill');
      await kill(first.processes);

      const second = await start();
      const waiting = await until(second.stack, owner, startRun.id, 'waiting for approval after the restart', (run) => run.status === 'WAITING');
      assert.equal(waiting.steps.filter((step) => step.name === 'first').length, 1, 'the first call is one step, not two');
      assert.equal(fake.requestsFor(MODEL).length, beforeKill + 1, 'the first call was not made again; the second was made once');
      await kill(second.processes);

      const third = await start();
      await until(third.stack, owner, startRun.id, 'waiting again after another restart', (run) => run.status === 'WAITING');
      await as(third.stack, owner, `mutation($id: ID!) { approveRun(input: { runId: $id }) { id } }`, { id: startRun.id });
      const done = await until(third.stack, owner, startRun.id, 'done', (run) => ['DONE', 'ERROR'].includes(run.status));
      assert.equal(done.status, 'DONE', JSON.stringify(done.error));
      assert.equal(fake.requestsFor(MODEL).length, beforeKill + 1, 'two model calls in all, across three processes');
      await third.processes.stop();
    });

    test('a replica that dies mid-run has its run resumed by another', { skip: variant.url ? false : 'one process owns an embedded database: replicas need PostgreSQL' }, async () => {
      const live = await start();
      const owner = await signUp(live.stack, 'replicas', { pastGateway: true });
      await publish(live.stack, owner, 'replicated', workflow('replicated', 3_000, false));
      // A second replica of the agents subgraph, on the same database, under its own executor id.
      const port = await freePort();
      const replica = fork(SERVE, ['agents'], {
        env: { ...env, AGENTS_PORT: String(port), AGENTS_EXECUTOR_ID: 'replica-b', SUBGRAPH_URLS: Object.entries(live.stack.subgraphUrls).map(([n, u]) => `${n}=${u}`).join(',') },
        execArgv: ['--import', 'tsx'],
        stdio: 'ignore',
      });
      extra.push(replica);
      const replicaUrl = `http://127.0.0.1:${port}`;
      await waitFor(() => fetch(`${replicaUrl}/readyz`).then((r) => r.ok, () => false), 'the second replica ready', { timeoutMs: 60_000, intervalMs: 100 });
      const calls = fake.requestsFor(MODEL).length;

      // Started on the second replica (as the gateway would send it there), with the owner's signed principal.
      const principal = { tenantId: owner.tenantId, userId: owner.userId, roles: ['owner'], scopes: [], permissions: BUILT_IN_ROLES.owner, isolation: 'SHARED', plan: 'ENTERPRISE' };
      const { startRun } = await graphql<{ startRun: { id: string } }>(`${replicaUrl}/graphql`, `mutation { startRun(input: { name: "replicated" }) { id } }`, {}, {
        [PRINCIPAL_HEADER]: await principalSigner(env.INTERNAL_AUTH_SECRET!).sign(principal as never),
      });
      await until(live.stack, owner, startRun.id, 'past its first model call on the second replica', stepDone('first'));
      replica.kill('SIGKILL');
      await once(replica, 'exit');

      const done = await until(live.stack, owner, startRun.id, 'done on the live replica', (run) => ['DONE', 'ERROR'].includes(run.status));
      assert.equal(done.status, 'DONE', JSON.stringify(done.error));
      assert.equal(fake.requestsFor(MODEL).length - calls, 2, 'each model call once, the first on the dead replica, the second on the live one');
      await live.processes.stop();
    });
  });
}
