-- The tenant's own limits as usage last announced them (../index.ts). Chat (its 0003) and knowledge (its 0008)
-- created this very table themselves before it shipped here, so on their existing schemas it is already there.
CREATE TABLE IF NOT EXISTS quota_overrides (
  tenant_id uuid PRIMARY KEY,
  tokens_per_day bigint,
  tokens_per_month bigint,
  storage_bytes bigint,
  concurrent_streams integer,
  changed_at timestamptz NOT NULL
);
ALTER TABLE quota_overrides ENABLE ROW LEVEL SECURITY;
ALTER TABLE quota_overrides FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON quota_overrides;
CREATE POLICY tenant_isolation ON quota_overrides
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
