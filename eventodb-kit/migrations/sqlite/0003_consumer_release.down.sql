DROP INDEX IF EXISTS eventodb_kit_processed_events_position;
CREATE INDEX eventodb_kit_processed_events_age
    ON eventodb_kit_processed_events (processed_at);
ALTER TABLE eventodb_kit_parked_streams DROP COLUMN released_at;
ALTER TABLE eventodb_kit_parked_events DROP COLUMN status;
