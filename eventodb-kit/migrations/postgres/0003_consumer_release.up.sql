-- eventodb-kit 0003: consumer failure records and stream release (PostgreSQL).

-- 'parked' (holds back its stream until released) or 'skipped' (given up on; kept as a record).
ALTER TABLE eventodb_kit_parked_events ADD COLUMN status TEXT NOT NULL DEFAULT 'parked';

-- Set by an operator to have the consumer handle the stream's parked events, in order.
ALTER TABLE eventodb_kit_parked_streams ADD COLUMN released_at TIMESTAMPTZ;

-- Processed records are purged below the lowest position of a consumer's members (not by
-- age: that index only slowed every insert down).
DROP INDEX IF EXISTS eventodb_kit_processed_events_age;
CREATE INDEX eventodb_kit_processed_events_position
    ON eventodb_kit_processed_events (namespace, category, consumer, global_position);
