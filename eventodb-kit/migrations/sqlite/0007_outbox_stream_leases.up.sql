-- eventodb-kit 0007: one lease per stream instead of lease columns on every row (SQLite).
--
-- A sender takes the sendable head rows of a stream under one lease row: a claim writes one
-- row here instead of every row it takes, and a renewal one row instead of all of them. The
-- lease covers the stream's rows from `from_seq` (the first row it took) to `through_seq`: it
-- holds the stream back while it is live and one of those rows is still pending (a row sent
-- but not yet recorded stays fenced), and stops counting by itself once their sends are
-- recorded. A row that became visible later with a lower `seq` (its transaction committed
-- last) is not covered. A claim that finds an expired lease over pending rows marks them
-- outcome unknown (looked up in EventoDB before they are sent again), as an expired row lease
-- did before.
--
-- Stop the senders of earlier versions before applying this: they lease rows, not streams.
CREATE TABLE eventodb_kit_outbox_leases (
    namespace   TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    lease_until TEXT    NOT NULL,
    from_seq    INTEGER NOT NULL,
    through_seq INTEGER NOT NULL,
    PRIMARY KEY (namespace, stream)
) WITHOUT ROWID;

-- Rows leased under the old scheme may have been sent without being recorded.
UPDATE eventodb_kit_outbox
SET outcome_unknown = 1, lease_owner = NULL, lease_until = NULL
WHERE lease_owner IS NOT NULL AND status = 'pending';
