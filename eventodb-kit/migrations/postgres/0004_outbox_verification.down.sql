DROP INDEX IF EXISTS eventodb_kit_outbox_unverified;
ALTER TABLE eventodb_kit_outbox DROP COLUMN IF EXISTS lost_at;
ALTER TABLE eventodb_kit_outbox DROP COLUMN IF EXISTS requeued;
