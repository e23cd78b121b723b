-- eventodb-kit 0013: a message id is unique per namespace, as in EventoDB (SQLite).
--
-- Each namespace is a store of its own, so EventoDB takes the same id in two namespaces. The
-- outbox made ids unique across all of them: two tenants of one database that derive ids
-- from their own keys (a UUIDv5 of an order number) met `OutboxDuplicateId` for events
-- EventoDB would have taken. Every lookup by id already names the namespace.
--
-- SQLite cannot change a table's constraint in place: the table is rebuilt (copied, with
-- its indexes and triggers made again), in the migration's transaction. It takes the write
-- lock for as long as the copy takes: apply it when the outbox is small or writes can wait.
CREATE TABLE eventodb_kit_outbox_rebuilt (
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
    requeued         INTEGER NOT NULL DEFAULT 0,
    lost_at          TEXT,
    CONSTRAINT eventodb_kit_outbox_id_key UNIQUE (namespace, id),
    CONSTRAINT eventodb_kit_outbox_idempotency_key UNIQUE (namespace, idempotency_key)
);

INSERT INTO eventodb_kit_outbox_rebuilt (
    seq, id, namespace, stream, message_type, data, metadata, write_options,
    expected_version, idempotency_key, content_hash, status, attempts, next_attempt_at,
    last_error, outcome_unknown, lease_owner, lease_until, position, global_position,
    created_at, sent_at, verified_at, requeued, lost_at)
SELECT
    seq, id, namespace, stream, message_type, data, metadata, write_options,
    expected_version, idempotency_key, content_hash, status, attempts, next_attempt_at,
    last_error, outcome_unknown, lease_owner, lease_until, position, global_position,
    created_at, sent_at, verified_at, requeued, lost_at
FROM eventodb_kit_outbox;

-- `seq` is never handed out twice (AUTOINCREMENT): the new table goes on from the old one's
-- last, which purged rows may have taken.
DELETE FROM sqlite_sequence WHERE name = 'eventodb_kit_outbox_rebuilt';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'eventodb_kit_outbox_rebuilt', seq FROM sqlite_sequence WHERE name = 'eventodb_kit_outbox';

DROP TABLE eventodb_kit_outbox;
ALTER TABLE eventodb_kit_outbox_rebuilt RENAME TO eventodb_kit_outbox;

CREATE INDEX eventodb_kit_outbox_unsent_stream
    ON eventodb_kit_outbox (namespace, stream, seq)
    WHERE status IN ('pending', 'failed');
CREATE INDEX eventodb_kit_outbox_pending
    ON eventodb_kit_outbox (namespace, seq)
    WHERE status = 'pending';
CREATE INDEX eventodb_kit_outbox_failed
    ON eventodb_kit_outbox (namespace, seq)
    WHERE status = 'failed';
CREATE INDEX eventodb_kit_outbox_lost
    ON eventodb_kit_outbox (namespace, seq)
    WHERE requeued > 0;
CREATE INDEX eventodb_kit_outbox_unverified
    ON eventodb_kit_outbox (namespace, sent_at, seq)
    WHERE status = 'sent' AND verified_at IS NULL;
CREATE INDEX eventodb_kit_outbox_verified
    ON eventodb_kit_outbox (namespace, sent_at)
    WHERE status = 'sent' AND verified_at IS NOT NULL;
CREATE INDEX eventodb_kit_outbox_discarded
    ON eventodb_kit_outbox (namespace, created_at)
    WHERE status = 'discarded';
CREATE INDEX eventodb_kit_outbox_waiting
    ON eventodb_kit_outbox (namespace, next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at > created_at;

CREATE TRIGGER eventodb_kit_outbox_count_update
    AFTER UPDATE OF status, verified_at ON eventodb_kit_outbox
    WHEN (OLD.status = 'sent') <> (NEW.status = 'sent')
      OR (OLD.status = 'sent' AND OLD.verified_at IS NULL)
         <> (NEW.status = 'sent' AND NEW.verified_at IS NULL)
BEGIN
    INSERT INTO eventodb_kit_outbox_counts (namespace, sent, unverified)
    VALUES (NEW.namespace, (NEW.status = 'sent') - (OLD.status = 'sent'),
            (NEW.status = 'sent' AND NEW.verified_at IS NULL)
            - (OLD.status = 'sent' AND OLD.verified_at IS NULL))
    ON CONFLICT (namespace) DO UPDATE
    SET sent = sent + excluded.sent, unverified = unverified + excluded.unverified;
END;

CREATE TRIGGER eventodb_kit_outbox_count_delete
    AFTER DELETE ON eventodb_kit_outbox
    WHEN OLD.status = 'sent'
BEGIN
    UPDATE eventodb_kit_outbox_counts
    SET sent = sent - 1, unverified = unverified - (OLD.verified_at IS NULL)
    WHERE namespace = OLD.namespace;
END;
