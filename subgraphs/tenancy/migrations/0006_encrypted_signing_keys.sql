-- Private signing keys may be stored encrypted (JWE, under SIGNING_KEY_SECRET) instead of as plain JWK.
ALTER TABLE system_signing_keys ADD COLUMN private_jwe text;
ALTER TABLE system_signing_keys ALTER COLUMN private_jwk DROP NOT NULL;
ALTER TABLE system_signing_keys ADD CONSTRAINT system_signing_keys_one_private_key
  CHECK (num_nonnulls(private_jwk, private_jwe) = 1);
