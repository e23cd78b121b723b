ALTER TABLE eventodb_kit_outbox RESET (fillfactor);
