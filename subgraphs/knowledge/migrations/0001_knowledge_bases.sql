CREATE TABLE knowledge_bases (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  name text NOT NULL,
  description text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT knowledge_bases_tenant_name_key UNIQUE (tenant_id, name)
);
CREATE INDEX knowledge_bases_tenant_created_idx ON knowledge_bases (tenant_id, created_at DESC);
ALTER TABLE knowledge_bases ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_bases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_bases
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
