ALTER TABLE eventodb_kit_consumer_positions
    DROP COLUMN owner,
    DROP COLUMN owned_until;
