CREATE TABLE usage_events (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  metric text NOT NULL CHECK (metric IN ('REQUESTS', 'PROMPT_TOKENS', 'COMPLETION_TOKENS', 'STORAGE_BYTES')),
  quantity double precision NOT NULL CHECK (quantity >= 0),
  idempotency_key text NOT NULL,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT usage_events_idempotency_key UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX usage_events_tenant_time_idx ON usage_events (tenant_id, occurred_at);
ALTER TABLE usage_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_events
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
