-- Fails while two namespaces hold the same id.
ALTER TABLE eventodb_kit_outbox DROP CONSTRAINT eventodb_kit_outbox_id_key;
ALTER TABLE eventodb_kit_outbox ADD CONSTRAINT eventodb_kit_outbox_id_key UNIQUE (id);
