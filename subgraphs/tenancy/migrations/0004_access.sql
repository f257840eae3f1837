-- Where a tenant's data lives in the other subgraphs: rows in the shared schemas, or schemas of its own.
ALTER TABLE tenants ADD COLUMN isolation text NOT NULL DEFAULT 'SHARED' CHECK (isolation IN ('SHARED', 'DEDICATED'));

-- References between tenant-owned rows are composite (tenant_id, id): a foreign key check ignores row-level
-- security, so a single-column key could point at another tenant's row.
ALTER TABLE users ADD CONSTRAINT users_tenant_id_key UNIQUE (tenant_id, id);

-- Custom roles; the built-in ones (owner, admin, member, viewer) are defined in code.
CREATE TABLE roles (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name text NOT NULL,
  description text,
  permissions text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);

CREATE TABLE groups (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT groups_tenant_name_key UNIQUE (tenant_id, name),
  CONSTRAINT groups_tenant_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE group_members (
  tenant_id uuid NOT NULL,
  group_id uuid NOT NULL,
  user_id uuid NOT NULL,
  PRIMARY KEY (group_id, user_id),
  FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE service_accounts (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT service_accounts_tenant_name_key UNIQUE (tenant_id, name),
  CONSTRAINT service_accounts_tenant_id_key UNIQUE (tenant_id, id)
);

-- Who holds which role (built-in or custom, by name): exactly one of a user, a group, a service account.
CREATE TABLE role_assignments (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  role text NOT NULL,
  user_id uuid,
  group_id uuid,
  service_account_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (num_nonnulls(user_id, group_id, service_account_id) = 1),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, service_account_id) REFERENCES service_accounts (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX role_assignments_holder_key
  ON role_assignments (tenant_id, role, coalesce(user_id, group_id, service_account_id));

-- API keys of service accounts, stored as SHA-256 hashes of their secret; shown once when created.
CREATE TABLE api_keys (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  service_account_id uuid NOT NULL,
  name text NOT NULL,
  secret_hash text NOT NULL CONSTRAINT api_keys_secret_hash_key UNIQUE,
  scopes text[] NOT NULL,
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (tenant_id, service_account_id) REFERENCES service_accounts (tenant_id, id) ON DELETE CASCADE
);

-- Invitations to join a tenant with a role; the token is shown once and stored hashed.
CREATE TABLE invitations (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  email text NOT NULL,
  role text NOT NULL,
  token_hash text NOT NULL CONSTRAINT invitations_token_hash_key UNIQUE,
  invited_by uuid,
  expires_at timestamptz NOT NULL,
  accepted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (tenant_id, invited_by) REFERENCES users (tenant_id, id) ON DELETE SET NULL (invited_by)
);

DO $$ DECLARE tenant_table text; BEGIN
  FOREACH tenant_table IN ARRAY ARRAY['roles', 'groups', 'group_members', 'service_accounts', 'role_assignments', 'api_keys', 'invitations']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id())', tenant_table);
  END LOOP;
END $$;

-- Every tenant so far was created with one user, its owner. FORCE would hide the rows from an owner that
-- is not a superuser, so it is lifted for this one statement.
ALTER TABLE users NO FORCE ROW LEVEL SECURITY;
ALTER TABLE role_assignments NO FORCE ROW LEVEL SECURITY;
INSERT INTO role_assignments (id, tenant_id, role, user_id)
  SELECT DISTINCT ON (tenant_id) gen_random_uuid(), tenant_id, 'owner', id FROM users ORDER BY tenant_id, created_at;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
ALTER TABLE role_assignments FORCE ROW LEVEL SECURITY;
