-- Limits a tenant set below its plan's (null: the plan's), and token allowances of single members.
CREATE TABLE quota_overrides (
  tenant_id uuid PRIMARY KEY,
  tokens_per_day double precision CHECK (tokens_per_day >= 0),
  tokens_per_month double precision CHECK (tokens_per_month >= 0),
  storage_bytes double precision CHECK (storage_bytes >= 0),
  concurrent_streams integer CHECK (concurrent_streams >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE member_allowances (
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL,
  tokens_per_day double precision NOT NULL CHECK (tokens_per_day >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id)
);

CREATE INDEX usage_events_tenant_user_time_idx ON usage_events (tenant_id, user_id, occurred_at);

DO $$ DECLARE tenant_table text; BEGIN
  FOREACH tenant_table IN ARRAY ARRAY['quota_overrides', 'member_allowances']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id())', tenant_table);
  END LOOP;
END $$;
