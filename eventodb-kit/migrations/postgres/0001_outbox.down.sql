DROP TRIGGER IF EXISTS eventodb_kit_outbox_notify ON eventodb_kit_outbox;
DROP FUNCTION IF EXISTS eventodb_kit_outbox_notify();
DROP TABLE IF EXISTS eventodb_kit_outbox;
