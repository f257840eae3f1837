-- The issuer's signing keys. A system_* table: only the service itself (the schema owner) reads it.
CREATE TABLE system_signing_keys (
  kid text PRIMARY KEY,
  algorithm text NOT NULL,
  private_jwk jsonb NOT NULL,
  public_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- published in the JWKS until then: long enough for every token the key signed to expire
  retire_at timestamptz NOT NULL
);
