import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { BusEvent } from '../bus/types.ts';
import { TENANT_ISOLATIONS } from './principal.ts';

/** The topic services announce consumption on; the usage subgraph keeps the ledger of it. */
export const USAGE_TOPIC = 'usage.recorded';

/**
 * What Jarvis measures itself: requests at the gateway, model tokens, bytes stored, and for workflow and agent
 * runs the tool calls they made (tools, HTTP, MCP, search) and the runs started. Each enters the ledger only
 * through these events; no client may record one (recordUsage refuses meters named like them).
 */
export const USAGE_METRICS = ['REQUESTS', 'PROMPT_TOKENS', 'COMPLETION_TOKENS', 'STORAGE_BYTES', 'TOOL_CALLS', 'RUNS'] as const;
export type UsageMetric = (typeof USAGE_METRICS)[number];

/** The one metric that is a gauge rather than a counter: bytes released (a deleted document) are a negative quantity. */
export const SIGNED_USAGE_METRICS: readonly UsageMetric[] = ['STORAGE_BYTES'];

export const usagePayload = z
  .object({
    metric: z.enum(USAGE_METRICS),
    quantity: z.number().finite(),
    /** The model a token count is for, where there is one. */
    model: z.string().min(1).max(200).nullish(),
    /** The member whose work it was, where there is one. */
    userId: z.uuid().nullish(),
    /** Where the tenant's data lives, so the consumer writes the ledger row in the right schema. */
    isolation: z.enum(TENANT_ISOLATIONS).default('SHARED'),
  })
  .refine((payload) => payload.quantity >= 0 || SIGNED_USAGE_METRICS.includes(payload.metric), {
    message: `only ${SIGNED_USAGE_METRICS.join(', ')} may be negative`,
    path: ['quantity'],
  });

export type UsagePayload = z.input<typeof usagePayload>;

/** A usage event; `id` is its idempotency key, so retries of the same work must pass the same id. */
export function usageEvent(tenantId: string, payload: UsagePayload, id: string = randomUUID()): BusEvent {
  return { id, type: USAGE_TOPIC, tenantId, occurredAt: new Date().toISOString(), payload: usagePayload.parse(payload) };
}

/** The topic the usage subgraph announces a tenant's changed quota overrides on, for services that enforce them. */
export const QUOTA_TOPIC = 'usage.quota.changed';

const override = z.number().finite().nonnegative().nullable();

/** The tenant's overrides as they now stand (null: the plan's limit), whole, so the latest event is all a consumer needs. */
export const quotaChangedPayload = z.object({
  tokensPerDay: override,
  tokensPerMonth: override,
  storageBytes: override,
  concurrentStreams: override,
  isolation: z.enum(TENANT_ISOLATIONS).default('SHARED'),
});

export type QuotaChangedPayload = z.input<typeof quotaChangedPayload>;

/** `occurredAt` orders changes: a consumer keeps the latest, whatever order they arrive in. */
export function quotaChangedEvent(tenantId: string, payload: QuotaChangedPayload): BusEvent {
  return { id: randomUUID(), type: QUOTA_TOPIC, tenantId, occurredAt: new Date().toISOString(), payload: quotaChangedPayload.parse(payload) };
}

/** The topic the usage subgraph announces a member's changed daily token allowance on, for chat, which enforces it. */
export const ALLOWANCE_TOPIC = 'usage.allowance.changed';

/** The member's allowance as it now stands; null: the member has none of its own any more. */
export const allowanceChangedPayload = z.object({
  userId: z.uuid(),
  tokensPerDay: override,
  isolation: z.enum(TENANT_ISOLATIONS).default('SHARED'),
});

export type AllowanceChangedPayload = z.input<typeof allowanceChangedPayload>;

/** Ordered by `occurredAt`, as quota changes are. */
export function allowanceChangedEvent(tenantId: string, payload: AllowanceChangedPayload): BusEvent {
  return { id: randomUUID(), type: ALLOWANCE_TOPIC, tenantId, occurredAt: new Date().toISOString(), payload: allowanceChangedPayload.parse(payload) };
}
