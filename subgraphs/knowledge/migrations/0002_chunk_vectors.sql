-- Chunk embeddings for the pgvector store (src/vectors/pgvector.ts), created only where the vector extension
-- can be installed: on PostgreSQL without pgvector this migration does nothing, the rest of the schema works,
-- and the store reports itself unavailable (QDRANT_URL holds vectors instead).
-- The column gets its dimension count, and the HNSW index, from the store's first ensureCollection: the
-- embedder decides the dimensions at run time, and the index is built then, while the table is still empty.
DO $$
DECLARE
  vector_schema text;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'vector') THEN
    RAISE NOTICE 'the vector extension is not available: no chunk_vectors table';
    RETURN;
  END IF;
  -- In public, not in this service's schema: dropping a schema (a test's, say) must not drop the extension.
  CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;
  SELECT extnamespace::regnamespace::text INTO vector_schema FROM pg_extension WHERE extname = 'vector';

  EXECUTE format($table$
    CREATE TABLE chunk_vectors (
      id uuid PRIMARY KEY,
      tenant_id uuid NOT NULL,
      knowledge_base_id uuid NOT NULL,
      document_id uuid NOT NULL,
      readers text[] NOT NULL DEFAULT '{}',
      embedding %s.vector NOT NULL
    )$table$, vector_schema);
  CREATE INDEX chunk_vectors_knowledge_base_idx ON chunk_vectors (tenant_id, knowledge_base_id);
  CREATE INDEX chunk_vectors_document_idx ON chunk_vectors (tenant_id, document_id);
  ALTER TABLE chunk_vectors ENABLE ROW LEVEL SECURITY;
  ALTER TABLE chunk_vectors FORCE ROW LEVEL SECURITY;
  CREATE POLICY tenant_isolation ON chunk_vectors
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
END $$;
