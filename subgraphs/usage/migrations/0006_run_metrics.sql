-- Workflow and agent runs are measured like tokens, through the ledger: TOOL_CALLS (the tool, HTTP, MCP and
-- search calls a run made) and RUNS (runs started). Both count, so they stay non-negative (0004's check).
ALTER TABLE usage_events DROP CONSTRAINT usage_events_metric_check;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_metric_check
  CHECK (metric IN ('REQUESTS', 'PROMPT_TOKENS', 'COMPLETION_TOKENS', 'STORAGE_BYTES', 'TOOL_CALLS', 'RUNS'));
