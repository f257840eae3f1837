-- Model calls made for workflow and agent runs (the `complete` mutation), one row per tenant and idempotency key:
-- PENDING while the call that claimed the key (`claim`) is under way, touched as it goes, so that a second call
-- with the key waits for it instead of calling a model again, and a claim whose holder died (untouched for long)
-- can be taken over; DONE with the completion, which every later call with the key gets back.
CREATE TABLE completions (
  tenant_id uuid NOT NULL,
  idempotency_key text NOT NULL,
  status text NOT NULL CHECK (status IN ('PENDING', 'DONE')),
  claim uuid NOT NULL,
  source text NOT NULL,
  requested_by uuid,
  model text,
  content text,
  tool_calls jsonb NOT NULL DEFAULT '[]',
  prompt_tokens integer NOT NULL DEFAULT 0,
  completion_tokens integer NOT NULL DEFAULT 0,
  cost double precision NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  touched_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  completed_at timestamptz,
  PRIMARY KEY (tenant_id, idempotency_key)
);
ALTER TABLE completions ENABLE ROW LEVEL SECURITY;
ALTER TABLE completions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON completions
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
