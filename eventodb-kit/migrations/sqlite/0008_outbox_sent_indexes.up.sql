-- eventodb-kit 0008: each kind of row the purge deletes has an index in the order it is deleted
-- in (SQLite).
--
-- The purge looked for sent rows past the retention and discarded rows in one condition,
-- ordered by `seq`. No index answered that, so every purge read the whole table, however few
-- rows were due: every minute by default, with a week of sent rows kept. Now verified rows
-- and unverified rows (the sweep's, and the purge's when verification is off) are indexed by
-- `sent_at`, and discarded rows by `created_at`.
--
-- It also spares the sender one index entry per row it records as sent. A sent row went into
-- both `eventodb_kit_outbox_sent` and `eventodb_kit_outbox_unverified`; now it goes into the
-- second only, and into `eventodb_kit_outbox_verified` when the sweep verifies it (an update
-- that added an entry to `eventodb_kit_outbox_sent` before).
--
-- Building the indexes holds the database's write lock: apply it when the outbox is small or
-- writes can wait.

DROP INDEX eventodb_kit_outbox_sent;
DROP INDEX eventodb_kit_outbox_unverified;

CREATE INDEX eventodb_kit_outbox_unverified
    ON eventodb_kit_outbox (namespace, sent_at, seq)
    WHERE status = 'sent' AND verified_at IS NULL;

CREATE INDEX eventodb_kit_outbox_verified
    ON eventodb_kit_outbox (namespace, sent_at)
    WHERE status = 'sent' AND verified_at IS NOT NULL;

CREATE INDEX eventodb_kit_outbox_discarded
    ON eventodb_kit_outbox (namespace, created_at)
    WHERE status = 'discarded';
