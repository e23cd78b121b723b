DROP INDEX eventodb_kit_outbox_idempotency_key;
ALTER TABLE eventodb_kit_outbox
    ADD CONSTRAINT eventodb_kit_outbox_idempotency_key UNIQUE (namespace, idempotency_key);
