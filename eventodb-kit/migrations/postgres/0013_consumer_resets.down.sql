ALTER TABLE eventodb_kit_consumer_positions DROP COLUMN resets;
