DROP INDEX eventodb_kit_outbox_discarded;
DROP INDEX eventodb_kit_outbox_verified;
DROP INDEX eventodb_kit_outbox_unverified;

CREATE INDEX eventodb_kit_outbox_unverified
    ON eventodb_kit_outbox (namespace, seq)
    WHERE status = 'sent' AND verified_at IS NULL;

CREATE INDEX eventodb_kit_outbox_sent
    ON eventodb_kit_outbox (namespace, sent_at)
    WHERE status = 'sent';
