ALTER TABLE eventodb_kit_consumer_positions DROP COLUMN owner;
ALTER TABLE eventodb_kit_consumer_positions DROP COLUMN owned_until;
