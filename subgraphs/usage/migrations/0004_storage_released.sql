-- STORAGE_BYTES is a gauge: a deleted document's bytes come back as a negative event (its release), so the sum
-- of a tenant's STORAGE_BYTES events is the bytes it stores. Every other metric counts and stays non-negative.
ALTER TABLE usage_events DROP CONSTRAINT usage_events_quantity_check;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_quantity_check CHECK (quantity >= 0 OR metric = 'STORAGE_BYTES');
