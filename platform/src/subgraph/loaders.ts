import DataLoader from 'dataloader';
import type { Database, Transaction } from '../db/index.ts';
import { isUuid } from '../ids.ts';

/** A lookup key that names its tenant, so a batch can run inside that tenant's transaction. */
export interface TenantKey {
  tenantId: string;
  id: string;
}

/**
 * A per-request DataLoader over tenant-owned rows: keys are grouped by tenant and each group is loaded
 * with one query inside `withTenant`, so batching never widens what row-level security lets through.
 * Keys whose ids are not well-formed (UUIDs, unless `isId` says otherwise) load as null.
 */
export function tenantLoader<V>(
  db: Database,
  load: (tx: Transaction, ids: string[]) => Promise<Map<string, V>>,
  isId: (id: string) => boolean = isUuid,
): DataLoader<TenantKey, V | null, string> {
  return new DataLoader<TenantKey, V | null, string>(
    async (keys) => {
      const byTenant = new Map<string, Set<string>>();
      for (const { tenantId, id } of keys) {
        if (!isUuid(tenantId) || !isId(id)) continue;
        const ids = byTenant.get(tenantId) ?? new Set<string>();
        byTenant.set(tenantId, ids.add(id));
      }
      const loaded = new Map<string, V>();
      const failed = new Map<string, Error>();
      await Promise.all(
        [...byTenant].map(async ([tenantId, ids]) => {
          try {
            const found = await db.withTenant(tenantId, (tx) => load(tx, [...ids]));
            for (const [id, value] of found) loaded.set(`${tenantId}:${id}`, value);
          } catch (error) {
            failed.set(tenantId, error as Error); // only this tenant's keys fail, not the whole batch
          }
        }),
      );
      return keys.map(({ tenantId, id }) => failed.get(tenantId) ?? loaded.get(`${tenantId}:${id}`) ?? null);
    },
    { cacheKeyFn: ({ tenantId, id }) => `${tenantId}:${id}` },
  );
}

/** Groups rows by a key; a convenience for list loaders. */
export function groupBy<T>(rows: T[], keyOf: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}
