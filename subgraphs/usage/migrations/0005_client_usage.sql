-- Usage a tenant's own services record (recordUsage) under meters of their own naming, apart from the ledger
-- of what Jarvis measures itself (usage_events, written only from events): a client's idempotency keys live
-- here, so no key a client chooses can claim, and so drop, one of Jarvis's own events.
CREATE TABLE client_usage (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  meter text NOT NULL CHECK (meter ~ '^[a-z0-9._:-]{1,64}$'),
  quantity double precision NOT NULL CHECK (quantity >= 0),
  idempotency_key text NOT NULL,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  model text,
  user_id uuid,
  CONSTRAINT client_usage_idempotency_key UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX client_usage_tenant_time_idx ON client_usage (tenant_id, occurred_at);
ALTER TABLE client_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE client_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON client_usage
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
