ALTER TABLE eventodb_kit_consumer_positions DROP COLUMN seen_at;
ALTER TABLE eventodb_kit_consumer_positions DROP COLUMN heartbeat_ms;
ALTER TABLE eventodb_kit_consumer_positions DROP COLUMN stopped_at;
ALTER TABLE eventodb_kit_consumer_positions DROP COLUMN stop_error;
