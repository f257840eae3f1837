import { z } from 'zod';
import { defaultPort, type ServiceName } from './services.ts';
import { parseAllowedHost } from '../outbound.ts';

/**
 * The Fetch standard's blocked ports ("bad ports"): Node's fetch refuses to connect to them, so a service
 * listening on one could never be reached by the gateway, the subgraphs or the console.
 */
const FETCH_BLOCKED_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113,
  115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556,
  563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667,
  6668, 6669, 6679, 6697, 10080,
]);

const port = z.coerce
  .number()
  .int()
  .min(0)
  .max(65535)
  .refine((value) => !FETCH_BLOCKED_PORTS.has(value), 'is a port fetch refuses to connect to (a blocked port of the Fetch standard); pick another');
const flag = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1');

/** Parses "name=url,name=url" into a map; the gateway uses it to point a supergraph's subgraphs elsewhere. */
const urlMap = z.string().transform((value, ctx) => {
  const entries: Record<string, string> = {};
  for (const pair of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const url = pair.slice(eq + 1).trim();
    if (eq <= 0 || !URL.canParse(url)) {
      ctx.addIssue({ code: 'custom', message: `expected name=url, got "${pair}"` });
      return z.NEVER;
    }
    entries[name] = url;
  }
  return entries;
});

/** Parses "name,10.0.0.0/8,…" (OUTBOUND_ALLOWED_HOSTS): host names, addresses and CIDR ranges. */
const allowedHosts = z.string().transform((value, ctx) => {
  const entries = value.split(',').map((entry) => entry.trim()).filter(Boolean);
  for (const entry of entries) {
    try {
      parseAllowedHost(entry);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  }
  return entries;
});

/** How the chat service orders its models for a question (CHAT_ROUTING_STRATEGY; the chat router's strategies). */
export const ROUTING_STRATEGIES = ['COST', 'LATENCY', 'QUALITY'] as const;

/**
 * Every environment variable Jarvis reads. The README's configuration table lists exactly these
 * (a test keeps the two in step); descriptions live there.
 */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PORT: port.default(defaultPort('gateway')),
  TENANCY_PORT: port.default(defaultPort('tenancy')),
  KNOWLEDGE_PORT: port.default(defaultPort('knowledge')),
  CHAT_PORT: port.default(defaultPort('chat')),
  USAGE_PORT: port.default(defaultPort('usage')),
  AGENTS_PORT: port.default(defaultPort('agents')),
  DATABASE_URL: z.url().optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).default(10),
  DATABASE_SCHEMA_PREFIX: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case letters, digits and underscores')
    .max(18, 'at most 18 characters: dedicated tenant schemas append 35 to it and PostgreSQL allows 63')
    .optional(),
  DATABASE_APP_ROLE: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('jarvis_app'),
  DATA_DIR: z.string().min(1).default('.jarvis/data'),
  REDIS_URL: z.url().optional(),
  REDIS_KEY_PREFIX: z.string().min(1).default('jarvis:'),
  LIMITS_FAILURE_MODE: z.enum(['open', 'closed']).default('closed'),
  SUPERGRAPH_PATH: z.string().min(1).optional(),
  PERSISTED_DOCUMENTS_PATH: z.string().min(1).optional(),
  TRUSTED_DOCUMENTS_ONLY: flag.default(false),
  SUBGRAPH_URLS: urlMap.default({}),
  REQUEST_METER_FLUSH_MS: z.coerce.number().int().min(10).default(60_000),
  SUBGRAPH_CONNECTIONS: z.coerce.number().int().min(1).default(64),
  SUBGRAPH_DEDUPLICATION: flag.default(true),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  SEED_DEMO: flag.default(true),
  INTERNAL_AUTH_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  MAX_QUERY_TOKENS: z.coerce.number().int().min(100).default(10_000),
  MAX_QUERY_DEPTH: z.coerce.number().int().min(2).default(12),
  MAX_QUERY_ALIASES: z.coerce.number().int().min(0).default(30),
  AUTHZ_REJECT_UNAUTHORIZED: flag.default(false),
  OPERATOR_TOKEN: z.string().min(32, 'at least 32 characters').optional(),
  ANONYMOUS_REQUESTS_PER_SECOND: z.coerce.number().positive().default(10),
  ANONYMOUS_BURST: z.coerce.number().int().min(1).default(40),
  WEBSOCKET_ANONYMOUS_CONNECTIONS_PER_IP: z.coerce.number().int().min(1).default(20),
  TRUSTED_PROXIES: z
    .string()
    .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean))
    .default([]),
  TOKEN_ISSUER: z.string().min(1).default('http://localhost:4001'),
  TOKEN_AUDIENCE: z.string().min(1).default('jarvis-api'),
  AUTH_DEV_LOGIN: flag.default(false),
  TRUSTED_ISSUER_ALLOW_HTTP: flag.default(false),
  OUTBOUND_ALLOWED_HOSTS: allowedHosts.default([]),
  ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).default(900),
  REFRESH_TOKEN_TTL_HOURS: z.coerce.number().positive().default(720),
  SIGNING_KEY_ROTATION_HOURS: z.coerce.number().positive().default(24),
  SIGNING_KEY_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  JWT_JWKS_URL: z.url().optional(),
  TOKEN_EXCHANGE_URL: z.url().optional(),
  TOKEN_EXCHANGE_CACHE_SECONDS: z.coerce.number().min(0).default(30),
  AMQP_URL: z.url().optional(),
  BUS_NAMESPACE: z.string().regex(/^[a-z0-9_-]+$/, 'lower-case letters, digits, _ and -').default('jarvis'),
  QDRANT_URL: z.url().optional(),
  UPLOAD_MAX_BYTES: z.coerce.number().int().positive().default(20 * 1024 * 1024),
  OPENAI_BASE_URL: z.url().optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  EMBEDDING_MODEL: z.string().min(1).optional(),
  EMBEDDING_DIMENSIONS: z.coerce.number().int().positive().optional(),
  RERANK_URL: z.url().optional(),
  RERANK_API: z.enum(['tei', 'jina', 'cohere']).default('tei'),
  RERANK_MODEL: z.string().min(1).optional(),
  RERANK_API_KEY: z.string().min(1).optional(),
  CHAT_MODELS: z.string().min(2).optional(),
  CHAT_ROUTING_STRATEGY: z.enum(ROUTING_STRATEGIES).default('COST'),
  CHAT_FIRST_TOKEN_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
  CHAT_ABANDON_MS: z.coerce.number().int().min(100).default(10_000),
  CHAT_HEARTBEAT_MS: z.coerce.number().int().min(100).default(5_000),
  CHAT_TOP_K: z.coerce.number().int().min(1).max(50).default(6),
  AGENTS_EXECUTOR_ID: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, ., _ and -').optional(),
  AGENTS_LEASE_MS: z.coerce.number().int().min(100).default(15_000),
  AGENTS_MAX_STEPS_PER_RUN: z.coerce.number().int().min(1).default(1_000),
  AGENTS_OUTBOUND_ALLOW_HTTP: flag.default(false),
  AGENTS_HEARTBEAT_MS: z.coerce.number().int().min(100).default(5_000),
  CHAT_CACHE_TTL_SECONDS: z.coerce.number().int().min(1).default(3_600),
  CHAT_SEMANTIC_CACHE_THRESHOLD: z.coerce.number().positive().max(1).default(0.92),
  CHAT_LOCAL_TOKEN_DELAY_MS: z.coerce.number().int().min(0).default(10),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the configuration; an invalid variable stops start-up with a message naming it. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = configSchema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** The secret the gateway signs principals with; every service of one deployment must share it. */
export function internalAuthSecret(config: Config): string {
  if (!config.INTERNAL_AUTH_SECRET) {
    throw new ConfigError('INTERNAL_AUTH_SECRET is required: the gateway and subgraphs sign and check requests with it');
  }
  return config.INTERNAL_AUTH_SECRET;
}

/** The issuer whose bearer tokens the gateway accepts, when all three of its variables are set. */
export function trustedIssuer(config: Config): { issuer: string; audience: string; jwksUrl: string } | undefined {
  const { JWT_ISSUER: issuer, JWT_AUDIENCE: audience, JWT_JWKS_URL: jwksUrl } = config;
  if (!issuer && !audience && !jwksUrl) return undefined;
  if (!issuer || !audience || !jwksUrl) {
    throw new ConfigError('JWT_ISSUER, JWT_AUDIENCE and JWT_JWKS_URL go together: set all three or none');
  }
  return { issuer, audience, jwksUrl };
}

/**
 * Where the gateway trusts the tenancy subgraph's own issuer: the JWT_* variables that point at it, unless
 * the deployment names an issuer itself.
 */
export function trustTenancyIssuer(
  config: Config,
  tenancyBaseUrl: string,
): Partial<Record<'JWT_ISSUER' | 'JWT_AUDIENCE' | 'JWT_JWKS_URL' | 'TOKEN_EXCHANGE_URL', string>> {
  if (config.JWT_ISSUER) return {};
  return {
    JWT_ISSUER: config.TOKEN_ISSUER,
    JWT_AUDIENCE: config.TOKEN_AUDIENCE,
    JWT_JWKS_URL: `${tenancyBaseUrl}/.well-known/jwks.json`,
    TOKEN_EXCHANGE_URL: `${tenancyBaseUrl}/oauth/token`,
  };
}

export function servicePort(config: Config, service: ServiceName): number {
  return config[`${service.toUpperCase() as Uppercase<ServiceName>}_PORT`];
}
