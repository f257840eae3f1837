import { randomUUID } from 'node:crypto';
import type { TenantIsolation } from '@jarvis/platform/contracts';

/** Whom a count is for: the tenant, and the isolation its principal carries (usage routes its writes by it). */
export interface Metered {
  tenantId: string;
  isolation: TenantIsolation;
}

/** Counts sealed together: usage records each tenant's count of a batch once, under the batch's id. */
export interface SealedBatch {
  id: string;
  counts: { metered: Metered; quantity: number }[];
}

/**
 * The gateway's outbox for request counts. Counting adds to the open counts; sealing turns them into a batch
 * that stays until usage has every tenant's count of it. Any replica may seal and send: a batch left behind by
 * a replica that died is sent by the next one that flushes.
 */
export interface RequestCounts {
  add(metered: Metered): Promise<void>;
  seal(): Promise<void>;
  /** Sealed batches this replica may send now (another replica's claim keeps them from being sent twice at once). */
  claimPending(): Promise<SealedBatch[]>;
  /** Usage has this tenant's count of the batch. */
  acknowledge(batchId: string, metered: Metered): Promise<void>;
  close(): Promise<void>;
}

/** The field a tenant's count is kept under: tenant and isolation, neither of which holds a space. */
export const fieldOf = ({ tenantId, isolation }: Metered) => `${tenantId} ${isolation}`;

export function meteredOf(field: string): Metered {
  const [tenantId = '', isolation] = field.split(' ');
  return { tenantId, isolation: isolation as TenantIsolation };
}

/** Counts in this process: the embedded default, and where counts go while Redis cannot be reached. */
export function memoryRequestCounts(): RequestCounts {
  let open = new Map<string, number>();
  const sealed = new Map<string, Map<string, number>>();
  return {
    async add(metered) {
      const field = fieldOf(metered);
      open.set(field, (open.get(field) ?? 0) + 1);
    },
    async seal() {
      if (open.size === 0) return;
      sealed.set(randomUUID(), open);
      open = new Map();
    },
    async claimPending() {
      return [...sealed].map(([id, counts]) => ({ id, counts: [...counts].map(([field, quantity]) => ({ metered: meteredOf(field), quantity })) }));
    },
    async acknowledge(batchId, metered) {
      const counts = sealed.get(batchId);
      counts?.delete(fieldOf(metered));
      if (counts?.size === 0) sealed.delete(batchId);
    },
    async close() {},
  };
}
