-- eventodb-kit 0004: outbox verification (SQLite).
--
-- A sent row stays until EventoDB has shown it holds the event (`verified_at`, set by the
-- sender's reconciliation sweep). A row whose event EventoDB lost after acknowledging it is
-- sent again: `requeued` counts how often, `lost_at` says when the loss was found.
ALTER TABLE eventodb_kit_outbox ADD COLUMN requeued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE eventodb_kit_outbox ADD COLUMN lost_at TEXT;

CREATE INDEX eventodb_kit_outbox_unverified
    ON eventodb_kit_outbox (namespace, seq)
    WHERE status = 'sent' AND verified_at IS NULL;
