ALTER TABLE eventodb_kit_consumer_positions
    DROP COLUMN seen_at,
    DROP COLUMN heartbeat_ms,
    DROP COLUMN stopped_at,
    DROP COLUMN stop_error;
