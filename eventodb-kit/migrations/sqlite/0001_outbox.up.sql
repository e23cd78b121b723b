-- eventodb-kit 0001: the transactional outbox (SQLite).
--
-- Times are UTC text, 'YYYY-MM-DDTHH:MM:SS.SSSZ' (sortable); booleans are 0/1; JSON is text.
-- The sender is woken in-process by a commit hook; see the PostgreSQL file for the trigger.
CREATE TABLE eventodb_kit_outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL,
    namespace        TEXT    NOT NULL,
    stream           TEXT    NOT NULL,
    message_type     TEXT    NOT NULL,
    data             TEXT    NOT NULL,
    metadata         TEXT,
    write_options    TEXT    NOT NULL DEFAULT '{}',
    expected_version INTEGER,
    idempotency_key  TEXT,
    content_hash     TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed', 'discarded')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_error       TEXT,
    outcome_unknown  INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      TEXT,
    position         INTEGER,
    global_position  INTEGER,
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    sent_at          TEXT,
    verified_at      TEXT,
    CONSTRAINT eventodb_kit_outbox_id_key UNIQUE (id),
    CONSTRAINT eventodb_kit_outbox_idempotency_key UNIQUE (namespace, idempotency_key)
);

CREATE INDEX eventodb_kit_outbox_unsent_stream
    ON eventodb_kit_outbox (namespace, stream, seq)
    WHERE status IN ('pending', 'failed');

CREATE INDEX eventodb_kit_outbox_pending
    ON eventodb_kit_outbox (namespace, seq)
    WHERE status = 'pending';

CREATE INDEX eventodb_kit_outbox_sent
    ON eventodb_kit_outbox (namespace, sent_at)
    WHERE status = 'sent';
