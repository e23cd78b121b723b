DROP INDEX IF EXISTS eventodb_kit_outbox_lost;
DROP INDEX IF EXISTS eventodb_kit_outbox_failed;
