ALTER TABLE eventodb_kit_outbox DROP COLUMN unverified_again;
