ALTER TABLE eventodb_kit_outbox DROP COLUMN IF EXISTS unverified_again;
