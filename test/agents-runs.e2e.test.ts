/**
 * Workflow runs through the gateway, on the embedded database and on PostgreSQL: a workflow that branches, loops,
 * searches twice in parallel, calls the model and waits for an approval runs to DONE once approved, its events
 * followed over graphql-ws with no gap; input checked against the workflow's schema; try/retry with backoff, a
 * step timeout, a rejection and a cancellation each end as they should; and another tenant can neither see,
 * approve, cancel nor resolve the run.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { databaseVariants, waitFor } from '@jarvis/platform/testing';
import { DEMO_WORKFLOW, DEMO_WORKFLOW_NAME } from '../scripts/demo-definitions.ts';
import { addMember, as, respond, signUp, startTestStack, type Member, type TestStack } from './helpers.ts';


const CREATE = `mutation($input: CreateDefinitionInput!) { createDefinition(input: $input) { id latestVersion { number } } }`;
const PUBLISH = `mutation($id: ID!, $version: Int!) { publishDefinition(input: { definitionId: $id, version: $version }) { name } }`;
const START = `mutation($input: StartRunInput!) { startRun(input: $input) { id status version { number } label } }`;
const RUN = `query($id: ID!) {
  run(id: $id) {
    id status output error { code message path } promptTokens completionTokens cost
    pendingApproval { step }
    steps { number name path kind status output error { code } attempts }
  }
}`;
const EVENTS = `subscription($id: ID!, $after: Int) { runEvents(runId: $id, afterSeq: $after) { seq type step name output error { code } } }`;

interface RunView {
  id: string;
  status: string;
  output: unknown;
  error: { code: string; message: string; path: string } | null;
  promptTokens: number;
  completionTokens: number;
  pendingApproval: { step: number } | null;
  steps: { number: number; name: string; path: string; kind: string; status: string; output: unknown; error: { code: string } | null; attempts: number }[];
}
interface RunEvent {
  seq: number;
  type: string;
  step: number | null;
  name: string | null;
  output: unknown;
  error: { code: string } | null;
}

for (const variant of databaseVariants()) {
  describe(`workflow runs through the gateway, on ${variant.name}`, { skip: variant.skip }, () => {
    let stack: TestStack;
    let owner: Member;
    let neighbour: Member;
    const clients: Client[] = [];

    let hanging: string;
    let server: Server;

    before(async () => {
      // An endpoint that never answers, which the operator lets runs reach (OUTBOUND_ALLOWED_HOSTS).
      server = createServer(() => {}).listen(0, '127.0.0.1');
      await once(server, 'listening');
      hanging = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      stack = await startTestStack(variant, { AUTH_DEV_LOGIN: 'true', AGENTS_HEARTBEAT_MS: '200', OUTBOUND_ALLOWED_HOSTS: '127.0.0.1', AGENTS_OUTBOUND_ALLOW_HTTP: 'true' });
      owner = await signUp(stack, 'runs', { pastGateway: true });
      neighbour = await signUp(stack, 'runs-next-door', { pastGateway: true });
    });
    after(async () => {
      await Promise.all(clients.map((client) => client.dispose()));
      await stack?.close();
      server?.closeAllConnections();
      server?.close();
    });

    const published = async (member: Member, name: string, source: string) => {
      const { createDefinition } = await as<{ createDefinition: { id: string } }>(stack, member, CREATE, { input: { name, kind: 'WORKFLOW', source } });
      await as(stack, member, PUBLISH, { id: createDefinition.id, version: 1 });
      return createDefinition.id;
    };
    const start = async (member: Member, name: string, input: unknown) =>
      (await as<{ startRun: { id: string; status: string } }>(stack, member, START, { input: { name, input } })).startRun;
    const view = async (member: Member, id: string) => (await as<{ run: RunView | null }>(stack, member, RUN, { id })).run;
    const ended = (member: Member, id: string, timeoutMs = 30_000) =>
      waitFor(() => view(member, id), `run ${id} ended`, { until: (run) => ['DONE', 'ERROR', 'CANCELLED'].includes(run?.status ?? ''), timeoutMs, intervalMs: 100 });
    const waiting = (member: Member, id: string) =>
      waitFor(() => view(member, id), `run ${id} waiting for approval`, { until: (run) => run?.status === 'WAITING', timeoutMs: 30_000, intervalMs: 100 });

    async function events(member: Member, id: string, afterSeq = 0): Promise<RunEvent[]> {
      const client = createClient({ url: stack.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: member.headers.authorization }, retryAttempts: 0 });
      clients.push(client);
      const seen: RunEvent[] = [];
      for await (const result of client.iterate<{ runEvents: RunEvent }>({ query: EVENTS, variables: { id, after: afterSeq } })) {
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        const event = result.data!.runEvents;
        if (event.type === 'HEARTBEAT') continue;
        seen.push(event);
        if (['DONE', 'ERROR', 'CANCELLED'].includes(event.type)) break;
      }
      return seen;
    }

    test('a run branches, loops, searches twice at once, calls the model, waits for approval and ends DONE', async () => {
      await published(owner, DEMO_WORKFLOW_NAME, DEMO_WORKFLOW);
      const run = await start(owner, DEMO_WORKFLOW_NAME, { topics: ['hotels', 'trains'] });
      assert.equal(run.status, 'RUNNING');
      const paused = await waiting(owner, run.id);
      assert.ok(paused!.pendingApproval, 'it says which step waits');
      const following = events(owner, run.id);
      await as(stack, owner, `mutation($id: ID!) { approveRun(input: { runId: $id, comment: "fine" }) { id } }`, { id: run.id });
      const seen = await following;
      assert.deepEqual(seen.map((event) => event.seq), seen.map((_, i) => i + 1), 'every event, in order, with no gap');
      assert.equal(seen[0]!.type, 'STARTED');
      assert.equal(seen.at(-1)!.type, 'DONE');
      assert.ok(seen.some((event) => event.type === 'APPROVAL_NEEDED'));
      assert.ok(seen.some((event) => event.type === 'APPROVED'));

      const done = (await ended(owner, run.id))!;
      assert.equal(done.status, 'DONE', JSON.stringify(done.error));
      assert.deepEqual(done.output, { approved: true, comment: 'fine' });
      const names = done.steps.map((step) => step.name);
      for (const name of ['count', 'route', 'each', 'note', 'gather', 'first', 'second', 'summary', 'approval', 'finish']) assert.ok(names.includes(name), `step ${name} ran`);
      assert.equal(names.filter((name) => name === 'note').length, 2, 'the loop ran once per topic');
      assert.ok(done.steps.every((step) => step.status === 'DONE'));
      const summary = done.steps.find((step) => step.name === 'summary')!;
      assert.equal(summary.kind, 'call:jarvis.model');
      assert.ok(done.promptTokens > 0 && done.completionTokens > 0, 'the model call is counted on the run');

      // Counted as the run ends, a moment after DONE is written.
      const metrics = await waitFor(() => fetch(stack.subgraphUrls.agents!.replace(/\/graphql$/, '/metrics')).then((r) => r.text()), 'the run in the metrics', {
        until: (text) => /jarvis_runs_total\{[^}]*outcome="DONE"[^}]*\} [1-9]/.test(text),
        timeoutMs: 5_000,
        intervalMs: 50,
      });
      assert.match(metrics!, /jarvis_run_step_duration_seconds_count\{[^}]*kind="call:jarvis.model"[^}]*\} [1-9]/, 'step durations by kind');

      const resumed = await events(owner, run.id, 3);
      assert.deepEqual(resumed, seen.slice(3), 'resuming after seq 3 gives the rest, no repeat');
    });

    test("a workflow's input must satisfy its schema: BAD_USER_INPUT naming the path, and no run", async () => {
      const response = await respond(stack, owner, START, { input: { name: DEMO_WORKFLOW_NAME, input: { topics: 'hotels' } } });
      assert.equal(response.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
      assert.match(response.errors![0]!.message, /input\/topics/);
      const missing = await respond(stack, owner, START, { input: { name: 'no-such-workflow', input: {} } });
      assert.equal(missing.errors?.[0]?.extensions?.code, 'NOT_FOUND');
    });

    test('try retries a failing step with backoff, then its catch takes over; a step timeout is STEP_TIMEOUT', async () => {
      await published(
        owner,
        'retrying',
        `document: { dsl: '1.0.0', namespace: e2e, name: retrying, version: '1.0.0' }
do:
  - attempt:
      try:
        - fail:
            raise:
              error:
                type: https://serverlessworkflow.io/spec/1.0.0/errors/communication
                status: 503
                title: Unavailable
      catch:
        errors:
          with:
            status: 503
        as: failure
        retry:
          delay: { milliseconds: 100 }
          backoff: { exponential: {} }
          limit: { attempt: { count: 2 } }
        do:
          - recovered:
              set:
                recovered: \${ $failure.status }
  - wait:
      wait: { milliseconds: 50 }
`,
      );
      const started = Date.now();
      const run = (await ended(owner, (await start(owner, 'retrying', {})).id))!;
      assert.equal(run.status, 'DONE', JSON.stringify(run.error));
      assert.deepEqual(run.output, { recovered: 503 });
      assert.equal(run.steps.filter((step) => step.name === 'fail').length, 3, 'the first try and two retries');
      assert.ok(Date.now() - started >= 300, 'it waited 100 ms, then 200 ms, before retrying');

      await published(
        owner,
        'slow',
        `document: { dsl: '1.0.0', namespace: e2e, name: slow, version: '1.0.0' }
do:
  - hang:
      call: http
      with:
        method: get
        endpoint: \${ .url }
      timeout:
        after: { milliseconds: 300 }
`,
      );
      const slow = (await ended(owner, (await start(owner, 'slow', { url: `${hanging}/never` })).id))!;
      assert.equal(slow.status, 'ERROR');
      assert.equal(slow.error!.code, 'STEP_TIMEOUT');
      assert.equal(slow.error!.path, '/do/0/hang');
    });

    test("a run that outlives its workflow's timeout ends in ERROR (RUN_TIMEOUT); an approval that times out is APPROVAL_TIMEOUT", async () => {
      await published(
        owner,
        'bounded',
        `document: { dsl: '1.0.0', namespace: e2e, name: bounded, version: '1.0.0' }
timeout:
  after: { milliseconds: 400 }
do:
  - linger:
      wait: { seconds: 30 }
  - never:
      set: { reached: true }
`,
      );
      const started = Date.now();
      const bounded = (await ended(owner, (await start(owner, 'bounded', {})).id))!;
      assert.equal(bounded.status, 'ERROR');
      assert.equal(bounded.error!.code, 'RUN_TIMEOUT');
      assert.ok(Date.now() - started < 20_000, 'the wait was cut short by the timeout');
      assert.ok(!bounded.steps.some((step) => step.name === 'never'));

      await published(
        owner,
        'unanswered',
        `document: { dsl: '1.0.0', namespace: e2e, name: unanswered, version: '1.0.0' }
do:
  - approval:
      listen:
        to:
          one:
            with:
              type: jarvis.approval
      timeout:
        after: { milliseconds: 300 }
`,
      );
      const unanswered = (await ended(owner, (await start(owner, 'unanswered', {})).id))!;
      assert.equal(unanswered.status, 'ERROR');
      assert.equal(unanswered.error!.code, 'APPROVAL_TIMEOUT');
      assert.equal(unanswered.error!.path, '/do/0/approval');
    });

    test('fork with compete takes the first branch to finish; the slower one is cancelled', async () => {
      await published(
        owner,
        'racing',
        `document: { dsl: '1.0.0', namespace: e2e, name: racing, version: '1.0.0' }
do:
  - race:
      fork:
        compete: true
        branches:
          - slow:
              do:
                - pause:
                    wait: { seconds: 20 }
                - late:
                    set: { winner: slow }
          - fast:
              set: { winner: fast }
`,
      );
      const started = Date.now();
      const run = (await ended(owner, (await start(owner, 'racing', {})).id))!;
      assert.equal(run.status, 'DONE', JSON.stringify(run.error));
      assert.deepEqual(run.output, { winner: 'fast' });
      assert.ok(Date.now() - started < 15_000, 'it did not wait for the slow branch');
      assert.ok(!run.steps.some((step) => step.name === 'late'), 'the slow branch never got further');
    });

    test('a rejected approval ends the run in ERROR (APPROVAL_REJECTED); a cancelled one is CANCELLED', async () => {
      const rejected = await start(owner, DEMO_WORKFLOW_NAME, { topics: ['one', 'two'] });
      await waiting(owner, rejected.id);
      await as(stack, owner, `mutation($id: ID!) { rejectRun(input: { runId: $id, comment: "no" }) { id } }`, { id: rejected.id });
      const ended1 = (await ended(owner, rejected.id))!;
      assert.equal(ended1.status, 'ERROR');
      assert.equal(ended1.error!.code, 'APPROVAL_REJECTED');
      const twice = await respond(stack, owner, `mutation($id: ID!) { approveRun(input: { runId: $id }) { id } }`, { id: rejected.id });
      assert.equal(twice.errors?.[0]?.extensions?.code, 'CONFLICT');

      const cancelled = await start(owner, DEMO_WORKFLOW_NAME, { topics: ['one', 'two'] });
      await waiting(owner, cancelled.id);
      const { cancelRun } = await as<{ cancelRun: { status: string } }>(stack, owner, `mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: cancelled.id });
      assert.equal(cancelRun.status, 'CANCELLED');
      const seen = await events(owner, cancelled.id);
      assert.equal(seen.at(-1)!.type, 'CANCELLED');
      const after = await respond(stack, owner, `mutation($id: ID!) { approveRun(input: { runId: $id }) { id } }`, { id: cancelled.id });
      assert.equal(after.errors?.[0]?.extensions?.code, 'CONFLICT');
    });

    test('another tenant cannot see, approve, cancel or resolve a run', async () => {
      const run = await start(owner, DEMO_WORKFLOW_NAME, { topics: ['a', 'b'] });
      await waiting(owner, run.id);
      assert.equal(await view(neighbour, run.id), null);
      for (const mutation of ['approveRun(input: { runId: $id })', 'rejectRun(input: { runId: $id })', 'cancelRun(id: $id)']) {
        const response = await respond(stack, neighbour, `mutation($id: ID!) { ${mutation} { id } }`, { id: run.id });
        assert.equal(response.errors?.[0]?.extensions?.code, 'NOT_FOUND', mutation);
      }
      const token = await principalSigner(stack.config.INTERNAL_AUTH_SECRET!).sign({
        tenantId: neighbour.tenantId,
        roles: ['owner'],
        scopes: [],
        permissions: ['agents:read', 'agents:run', 'agents:approve'],
        isolation: 'SHARED',
      } as never);
      const entities = await fetch(stack.subgraphUrls.agents!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [PRINCIPAL_HEADER]: token },
        body: JSON.stringify({ query: `query($r: [_Any!]!) { _entities(representations: $r) { ... on Run { id status } } }`, variables: { r: [{ __typename: 'Run', id: run.id }] } }),
      }).then((r) => r.json() as Promise<{ data: { _entities: unknown[] } }>);
      assert.deepEqual(entities.data._entities, [null]);
      const still = (await view(owner, run.id))!;
      assert.equal(still.status, 'WAITING', 'nothing the neighbour did reached it');
      await as(stack, owner, `mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: run.id });
    });
  
    test("a model call beyond the member's token allowance ends the run in ERROR (QUOTA_EXCEEDED), the calls before it counted", async () => {
      const member = await addMember(stack, owner, `runner-${Date.now()}@runs.test`, 'member');
      await as(stack, owner, `mutation($a: MemberAllowanceInput!) { setMemberAllowance(input: $a) { plan } }`, { a: { userId: member.userId, tokensPerDay: 2000 } });
      const calls = (first: number) => `document: { dsl: '1.0.0', namespace: e2e, name: spend, version: '1.0.0' }
do:
  - small:
      call: jarvis.model
      with: { prompt: a small question, maxTokens: ${first} }
  - large:
      call: jarvis.model
      with: { prompt: a large question, maxTokens: 2500 }
`;
      await published(owner, 'spend', calls(50));
      // Chat learns allowances from the bus: once it knows the member's, the large call is refused.
      const run = await waitFor(async () => (await ended(member, (await start(member, 'spend', {})).id))!, "chat to know the member's allowance", {
        until: (ended) => ended.status === 'ERROR',
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      assert.equal(run.error!.code, 'QUOTA_EXCEEDED');
      assert.equal(run.error!.path, '/do/1/large');
      const small = run.steps.find((step) => step.name === 'small')!;
      assert.equal(small.status, 'DONE', 'the call within the allowance was made');
      assert.ok(run.promptTokens > 0, "the run counts the first call's tokens");
      const usage = async () => {
        const { tenant } = await as<{ tenant: { usage: { groups: { key: string | null; totals: { metric: string; quantity: number }[] }[] } } }>(
          stack,
          owner,
          `{ tenant { usage(groupBy: USER) { groups { key totals { metric quantity } } } } }`,
        );
        const mine = tenant.usage.groups.find((group) => group.key === member.userId)?.totals ?? [];
        return Object.fromEntries(mine.map((total) => [total.metric, total.quantity]));
      };
      const recorded = await waitFor(usage, "the member's run and tokens in the ledger", { until: (totals) => (totals.RUNS ?? 0) >= 1 && (totals.PROMPT_TOKENS ?? 0) > 0, timeoutMs: 20_000, intervalMs: 100 });
      assert.ok(recorded.PROMPT_TOKENS! >= run.promptTokens, 'the tokens of the calls made are in the ledger');
    });
  });
}
