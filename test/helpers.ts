/** For end-to-end tests: the stack of one suite; signing up, signing in and API keys through the public API. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { queueName } from '@jarvis/platform/bus';
import { bearer, devLogin, graphql, postGraphQL, type GraphQLResponse } from '@jarvis/platform/client';
import { SUBGRAPHS, type Config } from '@jarvis/platform/config';
import { PRINCIPAL_HEADER, principalSigner } from '@jarvis/platform/contracts';
import { OPERATOR } from '@jarvis/gateway/authentication';
import { deleteBusQueues, deleteRedisKeys, dropSchemas, testConfig, waitFor, type DatabaseVariant } from '@jarvis/platform/testing';
import { startStack, subgraphDefinition, type Stack } from '../scripts/stack.ts';

export interface TestStack extends Stack {
  config: Config;
}

/**
 * The gateway and every subgraph in this process on free ports, configured by `testConfig(variant, overrides)`;
 * closing it also drops the suite's schemas from PostgreSQL.
 */
export async function startTestStack(variant: DatabaseVariant, overrides: Record<string, string> = {}): Promise<TestStack> {
  const config = testConfig(variant, overrides);
  const dropOwnSchemas = async () => {
    if (variant.url && config.DATABASE_SCHEMA_PREFIX) await dropSchemas(variant.url, config.DATABASE_SCHEMA_PREFIX);
    await dropOwnServiceState(config);
  };
  let stack: Stack;
  try {
    stack = await startStack(config, { freePorts: true });
  } catch (error) {
    await dropOwnSchemas();
    throw error;
  }
  return {
    ...stack,
    config,
    async close() {
      await stack.close();
      await dropOwnSchemas();
    },
  };
}

/** What a stack left in Redis and RabbitMQ under its own prefix and namespace (testConfig's, never a shared one). */
export async function dropOwnServiceState(config: Config): Promise<void> {
  if (config.REDIS_URL && config.REDIS_KEY_PREFIX.startsWith('jarvis:test:')) await deleteRedisKeys(config.REDIS_URL, config.REDIS_KEY_PREFIX);
  if (config.AMQP_URL && config.BUS_NAMESPACE.startsWith('test-')) {
    const definitions = await Promise.all(SUBGRAPHS.map(({ name }) => subgraphDefinition(name)));
    const prefix = { queuePrefix: `${config.BUS_NAMESPACE}.` };
    const queues = definitions.flatMap((definition) => definition.subscriptions ?? []).map(({ topic, group }) => queueName(prefix, topic, group));
    await deleteBusQueues(config.AMQP_URL, `${config.BUS_NAMESPACE}.events`, queues);
  }
}

export interface Member {
  tenantId: string;
  userId: string;
  slug: string;
  email: string;
  /** Authorization header of the member's access token. */
  headers: Record<string, string>;
}

export const CREATE_TENANT = `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } owner { id } } }`;

/**
 * A new tenant (unique slug from `label`) and its owner, signed in. ENTERPRISE by default: its request rate is
 * far above what a test sends, so plan limits stay out of the way of tests about something else. Any plan or
 * isolation but sign-up's (FREE, SHARED) is the operator's to give, so the operator creates those.
 */
export async function signUp(
  stack: Stack,
  label: string,
  { isolation = 'SHARED', name = `Tenant ${label}`, plan = 'ENTERPRISE', pastGateway = false } = {},
): Promise<Member> {
  const slug = `${label}-${randomUUID().slice(0, 8)}`;
  const email = `owner@${slug}.test`;
  const operator = pastGateway ? await operatorPrincipal(stack) : plan === 'FREE' && isolation === 'SHARED' ? {} : operatorHeaders(stack);
  const { createTenant } = await graphql<{ createTenant: { tenant: { id: string }; owner: { id: string } } }>(
    pastGateway ? stack.subgraphUrls.tenancy! : stack.gatewayUrl,
    CREATE_TENANT,
    { input: { name, slug, isolation, plan, owner: { email, name: `Owner of ${slug}` } } },
    operator,
  );
  const token = await devLogin(stack.tokenUrl, slug, email);
  return { tenantId: createTenant.tenant.id, userId: createTenant.owner.id, slug, email, headers: bearer(token) };
}

/**
 * The operator's principal as the gateway signs it for a subgraph: for a sign-up that must not spend the
 * gateway's per-address limits (`signUp(…, { pastGateway: true })`).
 */
async function operatorPrincipal(stack: Stack & { config?: Config }): Promise<Record<string, string>> {
  const secret = stack.config?.INTERNAL_AUTH_SECRET;
  if (!secret) throw new Error('this stack has no INTERNAL_AUTH_SECRET');
  return { [PRINCIPAL_HEADER]: await principalSigner(secret).sign(OPERATOR) };
}

/** The operator's credential (OPERATOR_TOKEN, which testConfig sets) as an Authorization header. */
export function operatorHeaders(stack: Stack & { config?: Config }): Record<string, string> {
  const token = stack.config?.OPERATOR_TOKEN;
  if (!token) throw new Error('this stack has no OPERATOR_TOKEN');
  return bearer(token);
}

/** Invites `email` into the admin's tenant with `role`, accepts, and signs the new member in. */
export async function addMember(stack: Stack, admin: Member, email: string, role: string): Promise<Member> {
  const { inviteUser } = await as<{ inviteUser: { token: string } }>(
    stack,
    admin,
    `mutation($input: InviteUserInput!) { inviteUser(input: $input) { token } }`,
    { input: { email, role } },
  );
  const { acceptInvitation } = await graphql<{ acceptInvitation: { id: string } }>(
    stack.gatewayUrl,
    `mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { id } }`,
    { input: { token: inviteUser.token, name: email.split('@')[0] } },
  );
  return signIn(stack, admin, email, acceptInvitation.id);
}

export async function signIn(stack: Stack, colleague: Member, email: string, userId: string): Promise<Member> {
  const token = await devLogin(stack.tokenUrl, colleague.slug, email);
  return { ...colleague, userId, email, headers: bearer(token) };
}

/** A service account with `roles` and an API key with `scopes`; returns the key's secret and ids. */
export async function serviceKey(stack: Stack, admin: Member, { roles = [] as string[], scopes = [] as string[], expiresAt = undefined as string | undefined } = {}) {
  const { createServiceAccount } = await as<{ createServiceAccount: { id: string } }>(
    stack,
    admin,
    `mutation($input: CreateServiceAccountInput!) { createServiceAccount(input: $input) { id } }`,
    { input: { name: `svc-${randomUUID().slice(0, 8)}`, roles } },
  );
  const { createApiKey } = await as<{ createApiKey: { secret: string; apiKey: { id: string } } }>(
    stack,
    admin,
    `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }`,
    { input: { serviceAccountId: createServiceAccount.id, name: 'test key', scopes, expiresAt } },
  );
  return { secret: createApiKey.secret, keyId: createApiKey.apiKey.id, serviceAccountId: createServiceAccount.id, headers: bearer(createApiKey.secret) };
}

/** `data` of a request made as `caller`; throws on errors. */
export function as<T>(stack: Stack, caller: { headers: Record<string, string> }, query: string, variables: Record<string, unknown> = {}) {
  return graphql<T>(stack.gatewayUrl, query, variables, caller.headers);
}

/** The whole response of a request made as `caller` (anonymous without one), errors included. */
export async function respond<T = Record<string, unknown>>(
  stack: Stack,
  caller: { headers: Record<string, string> } | undefined,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLResponse<T> & { status: number }> {
  const { status, body } = await postGraphQL<T>(stack.gatewayUrl, query, variables, caller?.headers ?? {});
  return { status, ...body };
}

/** The codes of a response's errors, by path. */
export function errorCodes(response: GraphQLResponse<unknown>): Record<string, string> {
  return Object.fromEntries((response.errors ?? []).map((e) => [(e.path ?? []).join('.'), String(e.extensions?.code)]));
}

export interface Launch {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `npm start` (scripts/start.ts) as a child process with `env` (and PATH) only; what it prints is kept. */
export function launch(env: Record<string, string | undefined>): Launch {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { process: child, output: () => output, exited };
}

/** The first match of `pattern` in what the launched processes print; fails when they exit before printing it. */
async function printed(launched: Launch, pattern: RegExp, timeoutMs = 120_000): Promise<RegExpMatchArray> {
  const match = await waitFor(
    () => {
      const found = launched.output().match(pattern);
      if (!found && launched.process.exitCode !== null) throw new Error(`exited without printing ${pattern}; output:\n${launched.output()}`);
      return found;
    },
    () => `${pattern}; output:\n${launched.output()}`,
    { timeoutMs, intervalMs: 100 },
  );
  return match!;
}

/**
 * What `npm start`'s banner says, once it has printed all of it: the gateway, the console, the token endpoint
 * of the printed sign-in command (dev-login is on under npm start) and whether the demo was seeded.
 */
export async function banner(launched: Launch) {
  await printed(launched, /Ctrl-C stops everything/);
  const [, gatewayUrl] = await printed(launched, /Jarvis is up in [\d.]+s: (\S+)/);
  const [, consoleUrl] = await printed(launched, /web console: (\S+)/);
  const [, tokenUrl] = await printed(launched, /TOKEN=\$\(curl -s (\S+)/);
  const [, seed] = await printed(launched, /demo tenant "demo" (created|already there)/);
  return { gatewayUrl: gatewayUrl!, consoleUrl: consoleUrl!, tokenUrl: tokenUrl!, seed: seed! };
}
