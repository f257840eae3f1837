-- BM25 needs, on every search, how many chunks the searched knowledge bases hold and their total length in
-- analyzer terms. Counted from `chunks`, that reads every chunk of those knowledge bases per search (a whole
-- knowledge base, whatever the query); kept here, it is one row per knowledge base.
-- Triggers on `chunks` keep the counts, not the store: chunks also go by cascade, when their document or
-- knowledge base is deleted. Ingestions into one knowledge base take turns on its row until they commit.
CREATE TABLE knowledge_base_lexical_stats (
  knowledge_base_id uuid PRIMARY KEY REFERENCES knowledge_bases (id) ON DELETE CASCADE,
  tenant_id uuid NOT NULL,
  chunk_count bigint NOT NULL,
  -- the sum of chunks.term_count
  term_count bigint NOT NULL
);

-- `search_path FROM CURRENT`: the table is the migrated schema's (shared or a dedicated tenant's), whoever's
-- statement fires the trigger.
CREATE FUNCTION count_lexical_stats() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE knowledge_base_lexical_stats AS stats
    SET chunk_count = stats.chunk_count - gone.chunk_count, term_count = stats.term_count - gone.term_count
    FROM (SELECT knowledge_base_id, count(*) AS chunk_count, sum(term_count) AS term_count
          FROM old_chunks GROUP BY knowledge_base_id) AS gone
    WHERE stats.knowledge_base_id = gone.knowledge_base_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO knowledge_base_lexical_stats AS stats (knowledge_base_id, tenant_id, chunk_count, term_count)
    SELECT knowledge_base_id, tenant_id, count(*), sum(term_count) FROM new_chunks GROUP BY knowledge_base_id, tenant_id
    ON CONFLICT (knowledge_base_id) DO UPDATE
      SET chunk_count = stats.chunk_count + excluded.chunk_count, term_count = stats.term_count + excluded.term_count;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER chunks_counted_on_insert AFTER INSERT ON chunks
  REFERENCING NEW TABLE AS new_chunks FOR EACH STATEMENT EXECUTE FUNCTION count_lexical_stats();
CREATE TRIGGER chunks_counted_on_delete AFTER DELETE ON chunks
  REFERENCING OLD TABLE AS old_chunks FOR EACH STATEMENT EXECUTE FUNCTION count_lexical_stats();
CREATE TRIGGER chunks_counted_on_update AFTER UPDATE ON chunks
  REFERENCING OLD TABLE AS old_chunks NEW TABLE AS new_chunks FOR EACH STATEMENT EXECUTE FUNCTION count_lexical_stats();

-- Chunks stored before this migration. The owner is subject to the tenant policy on `chunks` (FORCE) and
-- has no tenant here, so the policy is lifted for the copy, in this transaction only.
ALTER TABLE chunks NO FORCE ROW LEVEL SECURITY;
INSERT INTO knowledge_base_lexical_stats (knowledge_base_id, tenant_id, chunk_count, term_count)
  SELECT knowledge_base_id, tenant_id, count(*), sum(term_count) FROM chunks GROUP BY knowledge_base_id, tenant_id;
ALTER TABLE chunks FORCE ROW LEVEL SECURITY;

ALTER TABLE knowledge_base_lexical_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_base_lexical_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_base_lexical_stats
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
