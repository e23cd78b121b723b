-- eventodb-kit 0009: the outbox's sent counts, kept up to date instead of counted (SQLite).
--
-- `status()` counted the sent rows on every call: one index entry per row kept, a week of
-- them by default, for a figure health checks and metrics read every few seconds. Now
-- triggers keep the number of sent rows, and of sent rows not yet verified, per namespace,
-- whatever changes a row (the sender, the sweep, the purge, an operator's hand), and
-- `status()` reads one row. Rows pending or parked are still counted: there are only as many
-- as the backlog.
CREATE TABLE eventodb_kit_outbox_counts (
    namespace  TEXT    PRIMARY KEY,
    -- Rows with status 'sent'.
    sent       INTEGER NOT NULL DEFAULT 0,
    -- Of those, rows the verification sweep has not read back yet.
    unverified INTEGER NOT NULL DEFAULT 0
);

-- Row triggers (SQLite has no other kind), each only for a row whose counts change. Rows are
-- written pending: inserts change no count, and the application's writes pay nothing for
-- this.
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

-- The rows already there (the migration holds the write lock: nothing changes meanwhile).
INSERT INTO eventodb_kit_outbox_counts (namespace, sent, unverified)
SELECT namespace, sum(status = 'sent'), sum(status = 'sent' AND verified_at IS NULL)
FROM eventodb_kit_outbox
GROUP BY namespace;
