/**
 * `npm run bench`, its throughput part: the same requests through the Jarvis gateway, a stock @apollo/gateway
 * and Hive Gateway, side by side in one run, over the same supergraph and the same subgraph processes, and
 * the subgraph alone. Each gateway runs in a child process of its own, the bench client (autocannon) in this
 * one; per scenario every gateway is measured back to back. Figures go to BENCHMARKS.md.
 *   BENCH_DURATION (seconds per measurement, default 10), BENCH_CONNECTIONS (default 50).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { bearer, graphql } from '@jarvis/platform/client';
import { SUBGRAPHS, type ServiceName } from '@jarvis/platform/config';
import { PRINCIPAL_HEADER, principalSigner, type Principal } from '@jarvis/platform/contracts';
import { seedDemo } from '../scripts/seed.ts';
import { duration, launchBenchStack, loadAverage, machine, measure, stackAuthenticator, type BenchStack, type Measured } from './load.ts';

const STOCK_GATEWAY = fileURLToPath(new URL('./stock-gateway.ts', import.meta.url));
/** The stock gateways bench/stock-gateway.ts serves, by the name their rows have. */
const STOCK = { apollo: 'stock @apollo/gateway', hive: 'Hive Gateway', 'hive-no-dedup': 'Hive Gateway, no in-flight deduplication' };
type StockKind = keyof typeof STOCK;

interface Target {
  name: string;
  url: string;
  /** The gateway's process. */
  pid: number;
}

interface Scenario {
  title: string;
  query: string;
  /** What one subgraph answers on its own for comparison, and what that comparison means. */
  alone: { subgraph: ServiceName; query: string; note: string };
}

interface StockGateway extends Target {
  stop(): Promise<void>;
}

/** The plan's first fetch: what the multi-subgraph queries ask of tenancy before their entity fetches. */
const ROOT_FETCH = `{ tenant { id name } }`;

function scenarios(knowledgeBaseId: string): Scenario[] {
  const rootFetch = (others: string) => ({
    subgraph: 'tenancy' as const,
    query: ROOT_FETCH,
    note: `\`${ROOT_FETCH}\`, the plan's first fetch, asked of tenancy alone; the gateways then wait for ${others} as well, so this ratio is what the whole federated request costs, not the gateway's overhead alone`,
  });
  const mutation = `mutation { updateKnowledgeBase(input: { id: "${knowledgeBaseId}", description: "Benchmarked" }) { id name description } }`;
  return [
    {
      title: '(a) two-subgraph entity query',
      query: `{ tenant { name knowledgeBases { name description } } }`,
      alone: rootFetch('knowledge (the Tenant entity fetch)'),
    },
    {
      title: '(b) four-subgraph query',
      query: `{ tenant { name knowledgeBases { name } conversations { title } usage { totals { metric quantity } } } }`,
      alone: rootFetch('knowledge, chat and usage (three Tenant entity fetches at once)'),
    },
    {
      title: '(c) authenticated mutation (one subgraph, a row updated in a transaction)',
      query: mutation,
      alone: { subgraph: 'knowledge', query: mutation, note: "the same mutation sent straight to knowledge, so here the ratio is the gateway's own cost" },
    },
  ];
}

const began = Date.now();
const loadAtStart = loadAverage();
const stack = await launchBenchStack({}, { freePorts: true });
const stockGateways: StockGateway[] = [];

try {
  const tokenUrl = `${stack.baseUrl('tenancy')}/oauth/token`;
  // ENTERPRISE: its request rate (PLAN_QUOTAS: 2,000/s, burst 4,000) is above what this machine serves, so the
  // plan never refuses; a 429 would fail the run (measure counts non-2xx).
  const { token } = await seedDemo(stack.gatewayUrl, tokenUrl, { operatorToken: stack.operatorToken, plan: 'ENTERPRISE' });
  const owner = bearer(token);
  const knowledgeBaseId = await seedMore(stack.gatewayUrl, owner);
  const principal = await stackAuthenticator(stack)(owner.authorization);
  for (const kind of Object.keys(STOCK) as StockKind[]) stockGateways.push(await launchStockGateway(kind, stack, principal));
  const targets: Target[] = [{ name: 'Jarvis gateway', url: stack.gatewayUrl, pid: stack.pidOf('gateway')! }, ...stockGateways];

  console.log(`\n${machine()}; load average ${loadAtStart} at the start`);
  console.log(`Jarvis gateway: authentication (bearer JWT from dev-login), authorization directives, document and plan limits on.`);
  console.log(`Stock @apollo/gateway and Hive Gateway: default settings; they authenticate nobody, so each sends every subgraph`);
  console.log(`a principal for the same owner signed by the bench (renewed every 30 s) instead of one derived per request.`);
  console.log(`Hive Gateway deduplicates identical in-flight subgraph queries by default; the row without it shows what executing costs.`);
  console.log(`CPU: user + system time under load of the gateway's process per request answered, and of the subgraphs' one process`);
  console.log(`(all four subgraphs; 100 % = one core).`);
  const signed = async () => ({ [PRINCIPAL_HEADER]: await principalSigner(stack.secret).sign(principal) });
  // Each scenario starts at the next gateway, so none is always measured first (or right after the subgraph alone).
  for (const [i, scenario] of scenarios(knowledgeBaseId).entries()) {
    await compare(scenario, [...targets.slice(i), ...targets.slice(0, i)], owner, signed);
  }
  console.log(`\nload average ${loadAverage()} at the end; ${Math.round((Date.now() - began) / 1000)} s`);
} finally {
  await Promise.all(stockGateways.map((gateway) => gateway.stop()));
  await stack.stop();
}

/** Knowledge bases and conversations for the queries to return, and the id of the one the mutation updates. */
async function seedMore(gatewayUrl: string, owner: Record<string, string>): Promise<string> {
  let first: string | undefined;
  for (let i = 0; i < 4; i++) {
    const created = await graphql<{ createKnowledgeBase: { id: string } }>(
      gatewayUrl,
      `mutation($kb: CreateKnowledgeBaseInput!, $c: CreateConversationInput!) { createKnowledgeBase(input: $kb) { id } createConversation(input: $c) { id } }`,
      { kb: { name: `Collection ${i}`, description: 'bench' }, c: { title: `Conversation ${i}` } },
      owner,
    );
    first ??= created.createKnowledgeBase.id;
  }
  return first!;
}

/** A stock gateway (bench/stock-gateway.ts) in a child process, serving once this resolves. */
async function launchStockGateway(kind: StockKind, stack: BenchStack, principal: Principal): Promise<StockGateway> {
  const subgraphUrls = SUBGRAPHS.map(({ name }) => `${name}=${stack.baseUrl(name)}/graphql`).join(',');
  const env = { ...process.env, SUBGRAPH_URLS: subgraphUrls, INTERNAL_AUTH_SECRET: stack.secret, BENCH_PRINCIPAL: JSON.stringify(principal) };
  const child = fork(STOCK_GATEWAY, [kind], { env, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`the ${kind} gateway exited with ${code} before serving`)));
  });
  // SIGKILL: nothing to save, and Hive Gateway's runtime can wait for ever on SIGTERM.
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) await new Promise((exited) => child.once('exit', exited).kill('SIGKILL'));
  };
  return { name: STOCK[kind], url, pid: child.pid!, stop };
}

/**
 * One scenario through every target in the order given, then the subgraph alone; every target must answer what
 * the first did. Rows are printed in the order of STOCK, Jarvis's first.
 */
async function compare(scenario: Scenario, targets: Target[], owner: Record<string, string>, signed: () => Promise<Record<string, string>>) {
  const subgraphsPid = stack.pidOf('tenancy')!; // the four subgraphs share one process
  const rows: Row[] = [];
  for (const target of targets) {
    const measured = await measure(`${scenario.title} via ${target.name}`, target.url, scenario.query, owner, [subgraphsPid, target.pid]);
    if (rows[0] && !isDeepStrictEqual(measured.data, rows[0].data)) {
      throw new Error(`${target.name} answered ${JSON.stringify(measured.data)}, ${rows[0].name} ${JSON.stringify(rows[0].data)}`);
    }
    rows.push({ name: target.name, ...measured });
  }
  const { subgraph, query, note } = scenario.alone;
  const alone = await measure(`${scenario.title}, ${subgraph} alone`, `${stack.baseUrl(subgraph)}/graphql`, query, await signed(), [subgraphsPid]);
  const order = rows.map((row) => row.name).join(', ');
  const byName = (name: string) => rows.find((row) => row.name === name)!;
  printTable(scenario, [byName('Jarvis gateway'), ...Object.values(STOCK).map(byName), { name: `${subgraph} alone`, ...alone }], order);
}

type Row = Measured & { name: string };

/** `rows`: Jarvis's, the stock gateways' in the order of STOCK, the subgraph alone's. */
function printTable(scenario: Scenario, rows: Row[], order: string) {
  const [apollo, hive, alone] = [rows[1]!.rps, rows[2]!.rps, rows.at(-1)!.rps];
  console.log(`\n### ${scenario.title}\n\n\`${scenario.query}\`\n`);
  console.log('| through | req/s | p50 ms | p99 ms | vs @apollo/gateway | vs Hive Gateway | vs subgraph alone | gateway CPU ms per request | subgraphs\' CPU % |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const ratios = [apollo, hive, alone].map((base) => `${(row.rps / base).toFixed(2)}×`).join(' | ');
    const [subgraphs, gateway] = row.cpu;
    const perRequest = gateway === undefined ? '—' : ((1000 * gateway) / row.requests).toFixed(2);
    console.log(`| ${row.name} | ${row.rps.toFixed(0)} | ${row.p50} | ${row.p99} | ${ratios} | ${perRequest} | ${Math.round((100 * subgraphs!) / duration)} |`);
  }
  console.log(`\nMeasured in this order: ${order}, then ${scenario.alone.subgraph} alone: ${scenario.alone.note}.`);
}
