/** Helpers for tests: database and Redis variants, throw-away schemas, a quiet configuration, a token issuer. */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import pg from 'pg';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from './config/environment.ts';
import { portVariable, SERVICE_NAMES } from './config/services.ts';
import { openDatabase, type Database } from './db/index.ts';

/** One adapter of a port for a suite to run against: the embedded one, or the real service at `url`. */
export interface ServiceVariant<Name extends string> {
  name: Name;
  url: string | undefined;
  /** A reason to skip, shown in the test report, when the real service is not configured. */
  skip: string | false;
}

/** The embedded adapter always; the real service too when its URL variable is set (CI sets them all). */
function variants<Embedded extends string, Real extends string>(embedded: Embedded, real: Real, urlVariable: string): ServiceVariant<Embedded | Real>[] {
  const url = process.env[urlVariable] || undefined;
  return [
    { name: embedded, url: undefined, skip: false },
    { name: real, url, skip: url ? false : `${urlVariable} is not set` },
  ];
}

export type DatabaseVariant = ServiceVariant<'pglite' | 'postgres'>;

/** Embedded PGlite always; real PostgreSQL too when DATABASE_URL is set. */
export function databaseVariants(): DatabaseVariant[] {
  return variants('pglite', 'postgres', 'DATABASE_URL');
}

/** A schema prefix no other test run uses, so runs against one PostgreSQL never see each other's data. */
export function uniqueSchemaPrefix(): string {
  return `t_${randomBytes(5).toString('hex')}`;
}

export async function dropSchemas(url: string, prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`,
      [`${prefix}\\_%`],
    );
    for (const { nspname } of rows) await client.query(`DROP SCHEMA "${nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}

export type RedisVariant = ServiceVariant<'memory' | 'redis'>;

/** The in-process store always; Redis too when REDIS_URL is set. */
export function redisVariants(): RedisVariant[] {
  return variants('memory', 'redis', 'REDIS_URL');
}

/** A key prefix no other test run uses, so runs against one Redis never see each other's keys. */
export function uniqueRedisPrefix(): string {
  return `jarvis:test:${randomBytes(5).toString('hex')}:`;
}

export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.unlink(...keys);
    }
  } finally {
    await redis.quit();
  }
}

export type BusVariant = ServiceVariant<'in-process' | 'rabbitmq'>;

/** The in-process bus always; RabbitMQ too when AMQP_URL is set. */
export function busVariants(): BusVariant[] {
  return variants('in-process', 'rabbitmq', 'AMQP_URL');
}

/**
 * Configuration for an in-process test stack, quiet logs. The embedded variant is the embedded default whole:
 * in-memory PGlite, limits in memory, events in process. The PostgreSQL variant is the real services whole: a
 * private schema prefix, and Redis and RabbitMQ too where REDIS_URL and AMQP_URL are set (CI sets them), under
 * a key prefix and a bus namespace of its own.
 */
export function testConfig(variant: DatabaseVariant, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: 'memory://',
    SEED_DEMO: 'false',
    INTERNAL_AUTH_SECRET: randomBytes(32).toString('base64url'),
    OPERATOR_TOKEN: randomBytes(32).toString('base64url'),
    // Test files run two at a time against one PostgreSQL: keep each stack's connections few.
    ...(variant.url ? { DATABASE_URL: variant.url, DATABASE_SCHEMA_PREFIX: uniqueSchemaPrefix(), DATABASE_POOL_SIZE: '3', ...realServices() } : {}),
    ...overrides,
  });
}

/** Redis and RabbitMQ where their URLs are set, each under a name no other test stack uses. */
function realServices(): Record<string, string> {
  const redis = process.env.REDIS_URL || undefined;
  const amqp = process.env.AMQP_URL || undefined;
  return {
    ...(redis ? { REDIS_URL: redis, REDIS_KEY_PREFIX: uniqueRedisPrefix() } : {}),
    ...(amqp ? { AMQP_URL: amqp, BUS_NAMESPACE: `test-${randomBytes(5).toString('hex')}` } : {}),
  };
}

/** Deletes a test's queues (with their retry and dead-letter queues) and its exchange from RabbitMQ. */
export async function deleteBusQueues(amqpUrl: string, exchange: string, queues: Iterable<string>): Promise<void> {
  const { connect } = await import('amqplib');
  const connection = await connect(amqpUrl);
  try {
    const channel = await connection.createChannel();
    for (const queue of queues) {
      for (const suffix of ['', '.retry', '.dead']) await channel.deleteQueue(`${queue}${suffix}`);
    }
    await channel.deleteExchange(exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/**
 * A seeded pseudo-random generator (mulberry32): a randomised test prints its seed, and the same seed replays
 * the same run.
 */
export function seededRandom(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  /** A whole number from 0 to n - 1. */
  const below = (n: number) => Math.floor(next() * n);
  const pickOr = <T, F>(items: readonly T[], fallback: F): T | F => (items.length ? items[below(items.length)]! : fallback);
  return {
    next,
    below,
    chance: (p: number) => next() < p,
    /** One of `items`, which must not be empty. */
    pick<T>(items: readonly T[]): T {
      assert.ok(items.length > 0, 'pick from an empty list');
      return items[below(items.length)]!;
    },
    pickOr,
    /** Each item with probability p. */
    subset: <T>(items: readonly T[], p = 0.4): T[] => items.filter(() => next() < p),
  };
}

export type SeededRandom = ReturnType<typeof seededRandom>;

export interface WaitForOptions<T> {
  /** Whether a value is the one waited for; any truthy value unless given. */
  until?: (value: T) => boolean;
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Polls `probe` (sync or async) until its value is the one waited for, and returns that value. Past `timeoutMs`
 * (5 s unless given) the test fails with "timed out after … waiting for <what>" and the last value seen; `what`
 * may be a function, called then, to describe the latest state. A probe that throws ends the wait at once.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  what: string | (() => string),
  { until = Boolean, timeoutMs = 5_000, intervalMs = 10 }: WaitForOptions<T> = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (until(value)) return value;
    if (Date.now() > deadline) {
      const last = value === null || value === undefined || typeof value === 'boolean' ? '' : `; last: ${JSON.stringify(value)}`;
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}${last}`);
    }
    await sleep(intervalMs);
  }
}

/** A TCP port that was free a moment ago, for child processes that need a fixed port. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * `count` ports free now, all different: each is held until every one is found, so two cannot be the same
 * port handed out twice.
 */
export async function freePorts(count: number): Promise<number[]> {
  const { createServer } = await import('node:net');
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const server = createServer();
      return new Promise<typeof server>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      });
    }),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** A free port for each service, as the variables that set them. */
export async function freeServicePorts(): Promise<Record<string, string>> {
  const ports = await freePorts(SERVICE_NAMES.length);
  return Object.fromEntries(SERVICE_NAMES.map((name, i) => [portVariable(name), String(ports[i])]));
}

/**
 * A service's database for one test suite: in-memory PGlite, or a private schema in PostgreSQL that
 * `close` drops again.
 */
export async function openTestDatabase(variant: DatabaseVariant, service: string): Promise<Database & { close(): Promise<void> }> {
  const prefix = uniqueSchemaPrefix();
  const db = await openDatabase({
    service,
    url: variant.url,
    dataDir: 'memory://',
    schemaPrefix: variant.url ? prefix : undefined,
    appRole: 'jarvis_app',
    poolSize: 2,
  });
  return {
    ...db,
    async close() {
      await db.close();
      if (variant.url) await dropSchemas(variant.url, prefix);
    },
  };
}

/**
 * The head of a test subgraph's SDL that declares `@rateLimit` as the real subgraphs do and keeps it in the
 * supergraph with @composeDirective; the subgraph's own types follow it.
 */
export const RATE_LIMIT_SDL = `
  extend schema
    @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@composeDirective"])
    @link(url: "https://jarvis.dev/rate-limit/v1.0", import: ["@rateLimit", "RateLimitBy"])
    @composeDirective(name: "@rateLimit")
  enum RateLimitBy { PRINCIPAL TENANT IP }
  directive @rateLimit(max: Int!, window: String!, by: RateLimitBy = PRINCIPAL) on FIELD_DEFINITION
`;

export interface LocalSubgraph {
  name: string;
  sdl: string;
  resolvers: object;
}

/**
 * Small subgraphs served by mercurius on free ports and composed into a supergraph file, for running the
 * gateway over a schema of a test's own: `SUPERGRAPH_PATH` and `SUBGRAPH_URLS` point a gateway at them.
 */
export async function serveSupergraph(subgraphs: LocalSubgraph[]) {
  const [{ composeServices }, { buildSubgraphSchema }, { default: Fastify }, { default: mercurius }, { parse }] = await Promise.all([
    import('@apollo/composition'),
    import('@apollo/subgraph'),
    import('fastify'),
    import('mercurius'),
    import('graphql'),
  ]);
  const servers = await Promise.all(
    subgraphs.map(async ({ name, sdl, resolvers }) => {
      const server = Fastify();
      await server.register(mercurius, { schema: buildSubgraphSchema([{ typeDefs: parse(sdl), resolvers: resolvers as never }]) });
      return { name, sdl, server, url: `${await server.listen({ port: 0, host: '127.0.0.1' })}/graphql` };
    }),
  );
  const composed = composeServices(servers.map(({ name, sdl, url }) => ({ name, url, typeDefs: parse(sdl) })));
  if (composed.errors) throw new Error(`composition failed: ${composed.errors.join('; ')}`);
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const supergraphPath = join(mkdtempSync(join(tmpdir(), 'supergraph-')), 'supergraph.graphql');
  writeFileSync(supergraphPath, composed.supergraphSdl);
  return {
    supergraphPath,
    supergraphSdl: composed.supergraphSdl,
    subgraphUrls: servers.map(({ name, url }) => `${name}=${url}`).join(','),
    close: () => Promise.all(servers.map(({ server }) => server.close())).then(() => undefined),
  };
}

export interface TestSigningKey {
  kid: string;
  privateKey: CryptoKey;
  /** The public half as an issuer publishes it in its JWKS. */
  publicJwk: JWK;
}

/** A fresh ES256 key pair named `kid`, published nowhere until an issuer publishes it. */
export async function testSigningKey(kid: string): Promise<TestSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

export interface TestTokenOptions {
  issuer?: string;
  audience?: string;
  /** A random one unless given. */
  subject?: string;
  /** A jose time span or an epoch-seconds timestamp; five minutes unless given. */
  expiresIn?: string | number;
  /** Another key than the issuer's current one (its `kid` goes in the header): an old or an unpublished key. */
  key?: TestSigningKey;
  /** Adjusts the token last: a not-before, an issued-at in the past, … */
  edit?: (jwt: SignJWT) => SignJWT;
}

export interface TestIssuer {
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** The gateway configuration that trusts this issuer. */
  env: { JWT_ISSUER: string; JWT_AUDIENCE: string; JWT_JWKS_URL: string };
  /** The key tokens are signed with unless a call names another: the one published last. */
  readonly key: TestSigningKey;
  /** An ES256 token with `claims` and iss, aud, sub, iat and exp. */
  sign(claims?: JWTPayload, options?: TestTokenOptions): Promise<string>;
  /** Key rotation: a new key published first and signed with from now on; the old ones stay published. */
  rotate(kid: string): Promise<TestSigningKey>;
  close(): Promise<void>;
}

/** An OpenID-style token issuer for tests: an ES256 key, its JWKS served on a free port, tokens signed with it. */
export async function testIssuer({ issuer, audience, kid = 'test-key' }: { issuer: string; audience: string; kid?: string }): Promise<TestIssuer> {
  const { default: Fastify } = await import('fastify');
  let key = await testSigningKey(kid);
  const published: JWK[] = [key.publicJwk];
  const server = Fastify();
  server.get('/jwks.json', async () => ({ keys: published }));
  const jwksUrl = `${await server.listen({ port: 0, host: '127.0.0.1' })}/jwks.json`;
  return {
    issuer,
    audience,
    jwksUrl,
    env: { JWT_ISSUER: issuer, JWT_AUDIENCE: audience, JWT_JWKS_URL: jwksUrl },
    get key() {
      return key;
    },
    sign(claims = {}, options = {}) {
      const signer = options.key ?? key;
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: signer.kid })
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience ?? audience)
        .setSubject(options.subject ?? randomUUID())
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '5m');
      return (options.edit ? options.edit(jwt) : jwt).sign(signer.privateKey);
    },
    async rotate(newKid) {
      key = await testSigningKey(newKid);
      published.unshift(key.publicJwk);
      return key;
    },
    close: () => server.close(),
  };
}

/** Spans kept in memory, for tests of tracing (the SDK's own exporter, at the version the platform runs). */
export { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
