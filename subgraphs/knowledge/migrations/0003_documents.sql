-- Who may use a knowledge base, its documents and their ingestion, and the chunks search reads.
-- A reader is written `user:<uuid>` or `group:<uuid>`: the form grants, document restrictions and the caller's
-- reader set share, in the tables here and in the vector stores.

-- owner_id: the member who created it (null when a service account did); member_access: what every member of
-- the tenant may do with it beyond the grants. Rows from before this migration stay readable by all members.
ALTER TABLE knowledge_bases ADD COLUMN owner_id uuid;
ALTER TABLE knowledge_bases ADD COLUMN member_access text NOT NULL DEFAULT 'READ'
  CONSTRAINT knowledge_bases_member_access_check CHECK (member_access IN ('NONE', 'READ', 'WRITE'));
-- The embedder that built its vectors (model, version, dimensions): searching with another would be noise.
ALTER TABLE knowledge_bases ADD COLUMN embedder text;

CREATE TABLE knowledge_base_grants (
  knowledge_base_id uuid NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
  tenant_id uuid NOT NULL,
  reader text NOT NULL CONSTRAINT knowledge_base_grants_reader_check
    CHECK (reader ~ '^(user|group):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
  level text NOT NULL CONSTRAINT knowledge_base_grants_level_check CHECK (level IN ('READ', 'WRITE', 'MANAGE')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (knowledge_base_id, reader)
);
CREATE INDEX knowledge_base_grants_reader_idx ON knowledge_base_grants (tenant_id, reader);

-- A document's original content stays with it, so it can be ingested again (another chunking, another
-- embedder) without the client sending it twice. One content per knowledge base: adding the same bytes again
-- finds the document already there.
CREATE TABLE documents (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  knowledge_base_id uuid NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
  title text NOT NULL,
  media_type text NOT NULL,
  content bytea NOT NULL,
  content_hash text NOT NULL,
  byte_size bigint NOT NULL,
  -- empty: everyone who may read the knowledge base; otherwise only these readers (and its managers)
  readers text[] NOT NULL DEFAULT '{}',
  status text NOT NULL DEFAULT 'PENDING'
    CONSTRAINT documents_status_check CHECK (status IN ('PENDING', 'PROCESSING', 'READY', 'FAILED')),
  failure_reason text,
  -- ingestion attempts since the document was last (re)queued; the worker gives up after the last allowed one
  attempts integer NOT NULL DEFAULT 0,
  chunk_count integer NOT NULL DEFAULT 0,
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT documents_content_key UNIQUE (knowledge_base_id, content_hash)
);
CREATE INDEX documents_knowledge_base_idx ON documents (tenant_id, knowledge_base_id, created_at DESC);
CREATE INDEX documents_unfinished_idx ON documents (updated_at) WHERE status IN ('PENDING', 'PROCESSING');

-- A chunk is a slice of its document's extracted text: [start_offset, end_offset) cites it exactly.
CREATE TABLE chunks (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  knowledge_base_id uuid NOT NULL,
  document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
  ordinal integer NOT NULL,
  content text NOT NULL,
  section_path text[] NOT NULL DEFAULT '{}',
  start_offset integer NOT NULL,
  end_offset integer NOT NULL,
  -- analyzer terms in the chunk: BM25's document length
  term_count integer NOT NULL,
  readers text[] NOT NULL DEFAULT '{}',
  CONSTRAINT chunks_document_ordinal_key UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_knowledge_base_idx ON chunks (tenant_id, knowledge_base_id);

-- The lexical index: one posting per chunk and analyzer term.
CREATE TABLE chunk_terms (
  chunk_id uuid NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
  tenant_id uuid NOT NULL,
  knowledge_base_id uuid NOT NULL,
  term text NOT NULL,
  frequency integer NOT NULL,
  PRIMARY KEY (chunk_id, term)
);
CREATE INDEX chunk_terms_term_idx ON chunk_terms (tenant_id, knowledge_base_id, term) INCLUDE (chunk_id, frequency);

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['knowledge_base_grants', 'documents', 'chunks', 'chunk_terms'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) '
      'WITH CHECK (tenant_id = current_tenant_id())', t);
  END LOOP;
END $$;
