-- The generator of a STREAMING answer touches it while it works; an answer untouched for long lost its
-- generator (a replica that died) and is ended by the sweep, so its readers get an ERROR instead of waiting.
ALTER TABLE messages ADD COLUMN touched_at timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX messages_streaming_idx ON messages (touched_at) WHERE status = 'STREAMING';
