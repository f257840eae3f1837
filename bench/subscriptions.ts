/**
 * `npm run bench:subscriptions`: what the gateway adds to streamed chat events, and how many streams one gateway
 * process holds. Processes as under `npm start` (the gateway in one child process, the four subgraphs in
 * another), the local extractive answerer at CHAT_LOCAL_TOKEN_DELAY_MS = 10 (a word per token).
 *
 * Every answer is followed twice at once over graphql-ws: straight at the chat subgraph (with the signed
 * principal the gateway would send) and through the gateway (with the owner's bearer token). Both subscribers
 * are woken by the same NOTIFY in the chat subgraph, so the time an event arrives through the gateway minus
 * the time it arrives directly is the latency the gateway adds. The direct path is the reference: its own
 * latency from the event's commit is not measured (the chat database is PGlite inside the subgraphs' process).
 * Events that either subscriber got in its first read of the table (written before both were listening) are
 * left out; HEARTBEATs are too.
 *
 * 1. M answers one after another (BENCH_ANSWERS, default 30).
 * 2. N streams at once (10, 25, 50, 100, 200, 400, 800, up to BENCH_MAX_STREAMS; stop after the first N whose p99 exceeds 100 ms):
 *    each its own `ask` and its own WebSocket to the gateway (connected beforehand), answers from several
 *    ENTERPRISE tenants (100 streams each; the plan allows 200 at once), unique questions so the inference
 *    cache never answers. The bench client follows both paths in this process.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { bearer, devLogin, graphql } from '@jarvis/platform/client';
import { PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { cpuSeconds, hardware, launchBenchStack, loadAverage, mean, median, percentile, stackAuthenticator } from './load.ts';

const TOKEN_DELAY_MS = 10;
const ANSWERS = Number(process.env.BENCH_ANSWERS ?? 30);
const RAMP = [10, 25, 50, 100, 200, 400, 800].filter((n) => n <= Number(process.env.BENCH_MAX_STREAMS ?? 800));
const P99_LIMIT_MS = 100;
const STREAMS_PER_TENANT = 100;
const WAVE_TIMEOUT_MS = 600_000;

// Three sentences that cover the question: answers of about 50 words (tokens), each cited.
const DOCUMENT = `# Travel and expenses

## Travel abroad

Staff travelling abroad book hotels, trains and taxis through the travel desk, which keeps every receipt.
Meals and taxis abroad are refunded against receipts up to the daily allowance of the country.
Hotels abroad are booked two weeks ahead; airport taxis count as travel, not as meals.

## Equipment

Laptops are replaced every four years. Monitors and keyboards are ordered through the service portal.

## Leave

Annual leave is requested in the HR system a month before. Sick leave is reported to the manager on the first day.
`;
let questions = 0;
// The number makes each question its own cache entry (numbers split semantic buckets, keys.ts).
const question = () => `Ref ${++questions}: how are hotels, taxis and meals booked and refunded when travelling abroad?`;

const STREAM = `subscription($id: ID!) { answerStream(messageId: $id) { seq type delta error { code } } }`;

interface Received {
  seq: number;
  type: string;
  code?: string | undefined;
  t: number;
}
interface Followed {
  events: Received[];
  failure?: string;
  /** When `ask` returned. */
  asked?: number;
}
interface Tenant {
  headers: Record<string, string>;
  knowledgeBaseId: string;
  direct: Client;
}

console.log(`${hardware()}\nload average at start: ${loadAverage()}`);
const began = performance.now();

const stack = await launchBenchStack({ CHAT_LOCAL_TOKEN_DELAY_MS: String(TOKEN_DELAY_MS) }, { freePorts: true });
const gatewayWs = stack.gatewayUrl.replace(/^http/, 'ws');
const chatWs = `${stack.baseUrl('chat').replace(/^http/, 'ws')}/graphql`;
const tokenUrl = `${stack.baseUrl('tenancy')}/oauth/token`;
// The principal the gateway derives from a token, by the gateway's own code; signed as the gateway signs it.
const authenticate = stackAuthenticator(stack);
const signer = principalSigner(stack.secret);
const cpu = processCpu();
const tenants: Tenant[] = [];
const clients: Client[] = [];

try {
  // 1. One answer at a time.
  const [first] = await tenantsFor(1);
  const gateway = await connect(gatewayWs, { authorization: first!.headers.authorization });
  const sequential: Followed[][] = [];
  for (let i = 0; i < ANSWERS; i++) sequential.push(await followBoth(first!, gateway));
  const one = summary(sequential);
  const tokens = sequential.map(([direct]) => direct!.events.filter((e) => e.type === 'TOKEN').length);
  console.log(`\n### Gateway-added event latency, ${ANSWERS} answers one at a time (${Math.round(mean(tokens))} TOKEN events each on average)\n`);
  console.log('| events compared | p50 ms | p95 ms | p99 ms | max ms | answers DONE | lost or extra events | ask → DONE p50 s |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  console.log(
    `| ${one.gaps.length} | ${ms(one.p(50))} | ${ms(one.p(95))} | ${ms(one.p(99))} | ${ms(one.p(100))} | ${one.done}/${ANSWERS} | ${one.lost} | ${one.answerSeconds.toFixed(2)} |`,
  );
  problems(one);

  // 2. N streams at once.
  console.log(`\n### Concurrent streams through one gateway process (latency the gateway adds, per event)\n`);
  console.log(
    '| streams | tenants | answers DONE | events via gateway | events/s via gateway | p50 ms | p99 ms | max ms | lost or extra | ask → DONE p50 s | wave s | CPU % gateway / subgraphs / bench |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  let largest = 0;
  let largestAllDone = 0;
  let allDone = true;
  for (const n of RAMP) {
    const waveTenants = await tenantsFor(Math.ceil(n / STREAMS_PER_TENANT));
    const own = await Promise.all(Array.from({ length: n }, (_, i) => connect(gatewayWs, { authorization: waveTenants[i % waveTenants.length]!.headers.authorization })));
    const started = performance.now();
    const cpuBefore = cpu();
    const streams = await Promise.all(own.map((client, i) => followBoth(waveTenants[i % waveTenants.length]!, client)));
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpu();
    const load = cpuAfter.map((used, i) => Math.round((100 * (used - cpuBefore[i]!)) / seconds)).join(' / ');
    await Promise.all(own.map((client) => client.dispose()));
    const s = summary(streams);
    const delivered = streams.flatMap(([, via]) => via!.events.filter((e) => e.type !== 'HEARTBEAT'));
    const span = (Math.max(...delivered.map((e) => e.t)) - Math.min(...delivered.map((e) => e.t))) / 1000;
    console.log(
      `| ${n} | ${waveTenants.length} | ${s.done}/${n} | ${delivered.length} | ${Math.round(delivered.length / span)} | ${ms(s.p(50))} | ${ms(s.p(99))} | ${ms(s.p(100))} | ${s.lost} | ${s.answerSeconds.toFixed(2)} | ${seconds.toFixed(1)} | ${load} |`,
    );
    problems(s);
    if (s.p(99) > P99_LIMIT_MS) break;
    largest = n;
    allDone &&= s.done === n;
    if (allDone) largestAllDone = n;
  }
  console.log(`\nlargest N with p99 ≤ ${P99_LIMIT_MS} ms: ${largest || 'none'}; and with every answer DONE: ${largestAllDone || 'none'}`);
  console.log(`run time ${((performance.now() - began) / 1000).toFixed(0)} s; load average at end: ${loadAverage()}`);
} finally {
  await Promise.allSettled(clients.map((client) => client.dispose()));
  await stack.stop();
}

/**
 * CPU seconds used so far by the gateway's process, the subgraphs' process and this one (Linux /proc; NaN
 * elsewhere): per wave, which event loop saturates.
 */
function processCpu(): () => number[] {
  const pids = [stack.pidOf('gateway')!, stack.pidOf('tenancy')!, process.pid];
  return () => cpuSeconds(pids);
}

/** A graphql-ws client, its socket open and acknowledged; disposed at the end at the latest. */
async function connect(url: string, connectionParams: Record<string, unknown> | (() => Promise<Record<string, unknown>>)): Promise<Client> {
  let client!: Client;
  await new Promise<void>((resolve, reject) => {
    client = createClient({ url, webSocketImpl: WebSocket, connectionParams, lazy: false, retryAttempts: 0, on: { connected: () => resolve(), error: reject } });
  });
  clients.push(client);
  return client;
}

/** The first `count` tenants, made as needed: ENTERPRISE, its owner signed in, a knowledge base with the document READY. */
async function tenantsFor(count: number): Promise<Tenant[]> {
  while (tenants.length < count) {
    const slug = `bench-${randomUUID().slice(0, 8)}`;
    const email = `owner@${slug}.test`;
    await graphql(stack.gatewayUrl, `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } } }`, {
      input: { name: slug, slug, isolation: 'SHARED', plan: 'ENTERPRISE', owner: { email, name: 'Owner' } },
    }, bearer(stack.operatorToken));
    const headers = bearer(await devLogin(tokenUrl, slug, email));
    const principal = await authenticate(headers.authorization);
    const direct = await connect(chatWs, async () => ({ [PRINCIPAL_HEADER]: await signer.sign(principal) }));
    const { createKnowledgeBase } = await graphql<{ createKnowledgeBase: { id: string } }>(
      stack.gatewayUrl, `mutation { createKnowledgeBase(input: { name: "Handbook" }) { id } }`, {}, headers);
    const { addDocument } = await graphql<{ addDocument: { id: string } }>(
      stack.gatewayUrl,
      `mutation($input: AddDocumentInput!) { addDocument(input: $input) { id } }`,
      { input: { knowledgeBaseId: createKnowledgeBase.id, title: 'Travel and expenses', content: DOCUMENT } },
      headers,
    );
    for (;;) {
      const { document } = await graphql<{ document: { status: string } }>(
        stack.gatewayUrl, `query($id: ID!) { document(id: $id) { status } }`, { id: addDocument.id }, headers);
      if (document.status === 'READY') break;
      if (document.status === 'FAILED') throw new Error('the document failed to ingest');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    tenants.push({ headers, knowledgeBaseId: createKnowledgeBase.id, direct });
  }
  return tenants.slice(0, count);
}

/** Asks a new question and follows the answer directly at chat and through `gateway`, subscribed in that order. */
async function followBoth(tenant: Tenant, gateway: Client): Promise<Followed[]> {
  let id: string;
  try {
    ({ ask: { answer: { id } } } = await graphql<{ ask: { answer: { id: string } } }>(
      stack.gatewayUrl,
      `mutation($input: AskInput!) { ask(input: $input) { answer { id } } }`,
      { input: { question: question(), knowledgeBaseIds: [tenant.knowledgeBaseId] } },
      tenant.headers,
    ));
  } catch (error) {
    const failure = `ask: ${(error as Error).message}`;
    return [{ events: [], failure }, { events: [], failure }];
  }
  const asked = performance.now();
  const both = await Promise.all([follow(tenant.direct, id), follow(gateway, id)]);
  return both.map((path) => ({ ...path, asked }));
}

/** Every event of the answer with the time it arrived, until the stream completes (after DONE or ERROR). */
function follow(client: Client, id: string): Promise<Followed> {
  return new Promise((resolve) => {
    const events: Received[] = [];
    const end = (failure?: string) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(failure ? { events, failure } : { events });
    };
    const timer = setTimeout(() => end('timed out'), WAVE_TIMEOUT_MS);
    const unsubscribe = client.subscribe<{ answerStream: { seq: number; type: string; error: { code: string } | null } }>(
      { query: STREAM, variables: { id } },
      {
        next: ({ data, errors }) => {
          const t = performance.now();
          if (errors) return end(`errors: ${JSON.stringify(errors)}`);
          const { seq, type, error } = data!.answerStream;
          events.push({ seq, type, code: error?.code, t });
        },
        error: (error) => end(`subscription error: ${error instanceof Error ? error.message : JSON.stringify(error)}`),
        complete: () => end(),
      },
    );
  });
}

/**
 * Per event, gateway receive time minus direct receive time, left out: HEARTBEATs, and every seq up to the
 * highest either path had received by the time both had received their first event (what a subscriber read
 * from the table at first, not live). Also: answers that ended in DONE on both paths, seqs one path got and the
 * other not, and what went wrong.
 */
function summary(streams: Followed[][]) {
  const gaps: number[] = [];
  let done = 0;
  let lost = 0;
  const failures = new Map<string, number>();
  const note = (what: string) => failures.set(what, (failures.get(what) ?? 0) + 1);
  for (const [direct, via] of streams as [Followed, Followed][]) {
    for (const path of [direct, via]) if (path.failure) note(path.failure.slice(0, 200));
    const d = direct.events.filter((e) => e.type !== 'HEARTBEAT');
    const g = via.events.filter((e) => e.type !== 'HEARTBEAT');
    for (const e of [...d, ...g]) if (e.type === 'ERROR') note(`ERROR event ${e.code}`);
    if (d.at(-1)?.type === 'DONE' && g.at(-1)?.type === 'DONE') done++;
    const directSeqs = new Set(d.map((e) => e.seq));
    const viaSeqs = new Set(g.map((e) => e.seq));
    lost += [...directSeqs].filter((s) => !viaSeqs.has(s)).length + [...viaSeqs].filter((s) => !directSeqs.has(s)).length;
    if (d.length === 0 || g.length === 0) continue;
    const bothListening = Math.max(d[0]!.t, g[0]!.t);
    const replayed = Math.max(...[...d, ...g].filter((e) => e.t <= bothListening).map((e) => e.seq));
    const at = new Map(d.map((e) => [e.seq, e.t]));
    for (const e of g) if (e.seq > replayed && at.has(e.seq)) gaps.push(e.t - at.get(e.seq)!);
  }
  // ask returned → DONE received directly: how long an answer takes, at the chat subgraph's pace.
  const answerSeconds = streams.flatMap(([direct]) => direct!.events.filter((e) => e.type === 'DONE').map((e) => (e.t - direct!.asked!) / 1000));
  const p = (q: number) => percentile(gaps, q / 100);
  return { gaps, p, done, lost, failures, answerSeconds: median(answerSeconds) };
}

function problems({ failures }: ReturnType<typeof summary>) {
  for (const [what, count] of failures) console.log(`  ${count} × ${what}`);
}

function ms(value: number) {
  return value.toFixed(1);
}
