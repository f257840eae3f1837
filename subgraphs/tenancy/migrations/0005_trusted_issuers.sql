-- External OpenID Connect issuers a tenant trusts: their tokens are exchanged for Jarvis tokens of that tenant.
CREATE TABLE trusted_issuers (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  issuer text NOT NULL,
  jwks_url text NOT NULL,
  audience text NOT NULL,
  -- the claim naming the member (matched to users.email)
  email_claim text NOT NULL DEFAULT 'email',
  -- a claim holding the subject's groups or roles at the issuer, and which Jarvis role each value grants
  roles_claim text,
  role_mapping jsonb NOT NULL DEFAULT '{}',
  -- whether a subject with no member yet becomes one on first sign-in
  provision_users boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- one tenant per issuer and audience, so a token names exactly one tenant
  CONSTRAINT trusted_issuers_issuer_audience_key UNIQUE (issuer, audience)
);
ALTER TABLE trusted_issuers ENABLE ROW LEVEL SECURITY;
ALTER TABLE trusted_issuers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON trusted_issuers
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());

-- A token is read before any tenant is in scope; this answers only which tenants trust an issuer.
CREATE FUNCTION tenants_trusting(p_issuer text) RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
  AS $$ SELECT tenant_id FROM trusted_issuers WHERE issuer = p_issuer $$;
