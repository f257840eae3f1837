-- Workflow and agent definitions: a name unique in the tenant, its immutable versions (the YAML as given and
-- what it declares), and labels (production, staging, …) that point at one version each, with every move of a
-- label kept so a rollback knows where to go back to.
CREATE TABLE definitions (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  kind text NOT NULL CHECK (kind IN ('WORKFLOW', 'AGENT')),
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT definitions_tenant_name UNIQUE (tenant_id, name)
);
CREATE INDEX definitions_tenant_created_idx ON definitions (tenant_id, created_at DESC);

CREATE TABLE definition_versions (
  tenant_id uuid NOT NULL,
  definition_id uuid NOT NULL REFERENCES definitions (id),
  number integer NOT NULL CHECK (number >= 1),
  source text NOT NULL,
  declared jsonb NOT NULL,
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (definition_id, number)
);

CREATE TABLE definition_labels (
  tenant_id uuid NOT NULL,
  definition_id uuid NOT NULL REFERENCES definitions (id),
  name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,31}$'),
  version integer NOT NULL,
  moved_by uuid,
  moved_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (definition_id, name),
  FOREIGN KEY (definition_id, version) REFERENCES definition_versions (definition_id, number)
);

CREATE TABLE definition_label_moves (
  tenant_id uuid NOT NULL,
  definition_id uuid NOT NULL,
  label text NOT NULL,
  seq integer NOT NULL CHECK (seq >= 1),
  action text NOT NULL CHECK (action IN ('PUBLISH', 'ROLLBACK')),
  from_version integer,
  to_version integer NOT NULL,
  moved_by uuid,
  moved_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (definition_id, label, seq),
  FOREIGN KEY (definition_id, label) REFERENCES definition_labels (definition_id, name),
  FOREIGN KEY (definition_id, to_version) REFERENCES definition_versions (definition_id, number)
);

-- A version, once written, and the history of a label's moves never change: nothing updates them, whoever asks.
CREATE FUNCTION refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;
CREATE TRIGGER definition_versions_immutable BEFORE UPDATE ON definition_versions
  FOR EACH ROW EXECUTE FUNCTION refuse_update();
CREATE TRIGGER definition_label_moves_immutable BEFORE UPDATE ON definition_label_moves
  FOR EACH ROW EXECUTE FUNCTION refuse_update();

DO $$ DECLARE tenant_table text; BEGIN
  FOREACH tenant_table IN ARRAY ARRAY['definitions', 'definition_versions', 'definition_labels', 'definition_label_moves']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id())', tenant_table);
  END LOOP;
END $$;
