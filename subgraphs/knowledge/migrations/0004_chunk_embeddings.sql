-- Chunk embeddings for the exact store (src/vectors/exact.ts): plain arrays, so they need no extension and
-- the knowledge subgraph keeps its vectors on any PostgreSQL. Searches compare the query with every
-- candidate row of the tenant's knowledge bases; the indexes find those rows, and a document's for deletes.
CREATE TABLE chunk_embeddings (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  knowledge_base_id uuid NOT NULL,
  document_id uuid NOT NULL,
  readers text[] NOT NULL DEFAULT '{}',
  embedding real[] NOT NULL
);
CREATE INDEX chunk_embeddings_knowledge_base_idx ON chunk_embeddings (tenant_id, knowledge_base_id);
CREATE INDEX chunk_embeddings_document_idx ON chunk_embeddings (tenant_id, document_id);
ALTER TABLE chunk_embeddings ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunk_embeddings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chunk_embeddings
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
