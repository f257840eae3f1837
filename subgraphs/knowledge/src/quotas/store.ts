import type { Transaction } from '@jarvis/platform';

/** Keeps the announced limit unless a later announcement is already here. */
export async function saveStorageLimit(tx: Transaction, tenantId: string, storageBytes: number | null, changedAt: Date): Promise<void> {
  await tx.query(
    `INSERT INTO storage_limits (tenant_id, storage_bytes, changed_at) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET storage_bytes = excluded.storage_bytes, changed_at = excluded.changed_at
     WHERE storage_limits.changed_at < excluded.changed_at`,
    [tenantId, storageBytes, changedAt],
  );
}

/** The transaction's tenant's own storage limit; null when it keeps its plan's. */
export async function storageLimit(tx: Transaction): Promise<number | null> {
  const [row] = await tx.query<{ bytes: number | null }>(`SELECT storage_bytes::float8 AS bytes FROM storage_limits`);
  return row?.bytes ?? null;
}
