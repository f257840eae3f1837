-- A tenant's own storage limit below its plan's, as the usage subgraph last announced it (usage.quota.changed).
-- changed_at orders the announcements, which may arrive out of order: only a later one replaces an earlier one.
CREATE TABLE storage_limits (
  tenant_id uuid PRIMARY KEY,
  storage_bytes bigint,
  changed_at timestamptz NOT NULL
);
ALTER TABLE storage_limits ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage_limits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON storage_limits
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
