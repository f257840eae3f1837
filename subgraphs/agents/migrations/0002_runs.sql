-- Runs of workflows and agents. A run pins the version it started on; the engine (DBOS) keeps the durable
-- checkpoints in its own schema, these tables keep what callers see: the run, each step as it ran, and an event
-- log numbered 1, 2, … per run with no gap (runEvents reads it). Steps and events carry the engine's own key
-- for them, so replaying a run after a crash records nothing twice.
CREATE TABLE runs (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  definition_id uuid NOT NULL REFERENCES definitions (id),
  version integer NOT NULL,
  label text,
  kind text NOT NULL CHECK (kind IN ('WORKFLOW', 'AGENT')),
  status text NOT NULL CHECK (status IN ('RUNNING', 'WAITING', 'DONE', 'ERROR', 'CANCELLED')),
  input jsonb,
  output jsonb,
  error jsonb,
  started_by uuid,
  started_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  last_seq integer NOT NULL DEFAULT 0,
  last_step integer NOT NULL DEFAULT 0,
  -- The approval the run waits for: the engine's topic for it, the step, when it times out.
  pending_approval jsonb,
  prompt_tokens bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  cost double precision NOT NULL DEFAULT 0,
  tool_calls integer NOT NULL DEFAULT 0,
  FOREIGN KEY (definition_id, version) REFERENCES definition_versions (definition_id, number)
);
CREATE INDEX runs_tenant_started_idx ON runs (tenant_id, started_at DESC);
CREATE INDEX runs_definition_started_idx ON runs (definition_id, started_at DESC);
CREATE INDEX runs_tenant_active_idx ON runs (tenant_id) WHERE status IN ('RUNNING', 'WAITING');

CREATE TABLE run_steps (
  tenant_id uuid NOT NULL,
  run_id uuid NOT NULL REFERENCES runs (id),
  number integer NOT NULL CHECK (number >= 1),
  key text NOT NULL,
  name text NOT NULL,
  path text NOT NULL,
  kind text NOT NULL,
  status text NOT NULL CHECK (status IN ('RUNNING', 'WAITING', 'DONE', 'ERROR', 'CANCELLED')),
  input jsonb,
  output jsonb,
  error jsonb,
  attempts integer NOT NULL DEFAULT 1,
  model text,
  prompt_tokens bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  cost double precision NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  PRIMARY KEY (run_id, number),
  CONSTRAINT run_steps_key UNIQUE (run_id, key)
);

CREATE TABLE run_events (
  tenant_id uuid NOT NULL,
  run_id uuid NOT NULL REFERENCES runs (id),
  seq integer NOT NULL CHECK (seq >= 1),
  key text NOT NULL,
  type text NOT NULL,
  step integer,
  name text,
  output jsonb,
  error jsonb,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, seq),
  CONSTRAINT run_events_key UNIQUE (run_id, key)
);

-- Which engine replicas are alive: each beats here; a replica whose beat is older than the lease is dead, and
-- another resumes its runs. Not tenant data.
CREATE TABLE system_run_executors (
  executor_id text PRIMARY KEY,
  beat_at timestamptz NOT NULL DEFAULT now(),
  swept_at timestamptz
);

DO $$ DECLARE tenant_table text; BEGIN
  FOREACH tenant_table IN ARRAY ARRAY['runs', 'run_steps', 'run_events']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id())', tenant_table);
  END LOOP;
END $$;
