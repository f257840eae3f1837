-- Members' own daily token allowances as usage last announced them (platform/src/quota-overrides.ts): what
-- an answer reserves a member's tokens against. A removed allowance stays as a row without tokens, so an older
-- announcement that arrives late cannot bring it back.
CREATE TABLE member_allowances (
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL,
  tokens_per_day double precision CHECK (tokens_per_day >= 0),
  changed_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, user_id)
);
ALTER TABLE member_allowances ENABLE ROW LEVEL SECURITY;
ALTER TABLE member_allowances FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON member_allowances
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
