DROP TABLE IF EXISTS eventodb_kit_parked_streams;
DROP TABLE IF EXISTS eventodb_kit_parked_events;
DROP TABLE IF EXISTS eventodb_kit_processed_events;
DROP TABLE IF EXISTS eventodb_kit_consumer_positions;
