-- storage_limits (0005) held the storage limit alone; quota_overrides, which platform's quota-overrides module
-- creates before these migrations run, holds every limit. A schema that ran the retired 0008 moved its rows
-- already and has no storage_limits; any other still has it, with rows if it is older than 0008.
DO $$ BEGIN
  IF to_regclass('storage_limits') IS NOT NULL THEN
    INSERT INTO quota_overrides (tenant_id, storage_bytes, changed_at)
      SELECT tenant_id, storage_bytes, changed_at FROM storage_limits;
    DROP TABLE storage_limits;
  END IF;
END $$;
