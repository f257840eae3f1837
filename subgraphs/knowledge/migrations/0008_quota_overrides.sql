-- The tenant's own limits as usage last announced them, in the shape every enforcing subgraph keeps
-- (platform/src/quota-overrides.ts); storage_limits held only the storage limit.
CREATE TABLE quota_overrides (
  tenant_id uuid PRIMARY KEY,
  tokens_per_day bigint,
  tokens_per_month bigint,
  storage_bytes bigint,
  concurrent_streams integer,
  changed_at timestamptz NOT NULL
);
ALTER TABLE quota_overrides ENABLE ROW LEVEL SECURITY;
ALTER TABLE quota_overrides FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quota_overrides
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());

INSERT INTO quota_overrides (tenant_id, storage_bytes, changed_at) SELECT tenant_id, storage_bytes, changed_at FROM storage_limits;
DROP TABLE storage_limits;
