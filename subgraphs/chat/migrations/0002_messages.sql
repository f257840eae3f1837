-- Questions and answers, and each answer's events as they were generated: the record a stream is replayed
-- from, so a subscriber that reconnects — to any chat replica — resumes after its last seq with no gap.
CREATE TABLE messages (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('USER', 'ASSISTANT')),
  content text NOT NULL DEFAULT '',
  status text NOT NULL CHECK (status IN ('STREAMING', 'DONE', 'ERROR', 'CANCELLED')),
  author_id uuid,
  model text,
  citations jsonb NOT NULL DEFAULT '[]',
  error text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, created_at);
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());

CREATE TABLE answer_events (
  message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  seq integer NOT NULL,
  tenant_id uuid NOT NULL,
  type text NOT NULL CHECK (type IN ('TOKEN', 'CITATIONS', 'USAGE', 'DONE', 'ERROR')),
  payload jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (message_id, seq)
);
ALTER TABLE answer_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE answer_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON answer_events
  USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());

-- Wakes every replica's subscribers of the answer when its events commit; they read them from the table.
CREATE FUNCTION notify_answer_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('chat_answer_events', json_build_object('tenantId', tenant_id, 'messageId', message_id, 'seq', max(seq))::text)
  FROM new_events GROUP BY tenant_id, message_id;
  RETURN NULL;
END $$;

CREATE TRIGGER answer_events_announced AFTER INSERT ON answer_events
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION notify_answer_events();
