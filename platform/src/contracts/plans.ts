/** What each plan allows a tenant. Tenant admins may set lower quotas for themselves, never higher ones. */
export const PLANS = ['FREE', 'TEAM', 'ENTERPRISE'] as const;
export type Plan = (typeof PLANS)[number];

export interface Quota {
  /** Sustained requests per second at the gateway, for the tenant as a whole. */
  requestsPerSecond: number;
  /** Requests the tenant may make at once before the sustained rate applies. */
  burst: number;
  /** The same for each API key: one integration cannot use up its tenant's whole allowance. */
  apiKeyRequestsPerSecond: number;
  apiKeyBurst: number;
  /** Model tokens (prompt and completion) per UTC day and per UTC month. */
  tokensPerDay: number;
  tokensPerMonth: number;
  storageBytes: number;
  /** Chat streams open at once. */
  concurrentStreams: number;
  /** Workflow and agent runs under way at once (RUNNING; a run waiting for an approval holds nothing and does not count). */
  concurrentRuns: number;
}

const GIB = 1024 ** 3;

export const PLAN_QUOTAS: Record<Plan, Quota> = {
  FREE: {
    requestsPerSecond: 20,
    burst: 40,
    apiKeyRequestsPerSecond: 10,
    apiKeyBurst: 20,
    tokensPerDay: 200_000,
    tokensPerMonth: 2_000_000,
    storageBytes: 1 * GIB,
    concurrentStreams: 2,
    concurrentRuns: 2,
  },
  TEAM: {
    requestsPerSecond: 200,
    burst: 400,
    apiKeyRequestsPerSecond: 100,
    apiKeyBurst: 200,
    tokensPerDay: 5_000_000,
    tokensPerMonth: 100_000_000,
    storageBytes: 50 * GIB,
    concurrentStreams: 20,
    concurrentRuns: 20,
  },
  ENTERPRISE: {
    requestsPerSecond: 2_000,
    burst: 4_000,
    apiKeyRequestsPerSecond: 1_000,
    apiKeyBurst: 2_000,
    tokensPerDay: 100_000_000,
    tokensPerMonth: 2_000_000_000,
    storageBytes: 1_000 * GIB,
    concurrentStreams: 200,
    concurrentRuns: 200,
  },
};

export function isPlan(value: unknown): value is Plan {
  return typeof value === 'string' && (PLANS as readonly string[]).includes(value);
}
