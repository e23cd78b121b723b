DROP TABLE IF EXISTS eventodb_kit_outbox;
