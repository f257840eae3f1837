-- What the deployment's operator did to a tenant (sign-up on a chosen plan and isolation, plan changes): who,
-- when, what, from and to. Each row belongs to the tenant it concerns, under row-level security like the rest.
CREATE TABLE tenant_audit (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  action text NOT NULL,
  actor text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}'::jsonb,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_audit_tenant_at_idx ON tenant_audit (tenant_id, at);
ALTER TABLE tenant_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_audit
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
