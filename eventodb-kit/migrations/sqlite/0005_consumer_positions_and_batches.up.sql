-- eventodb-kit 0005: positions per group member *and* group size; processed batches (SQLite).
--
-- A member's position only says something about its share under the group size it ran
-- with. Keyed by member alone, a member restarted with a new size overwrote its row of the
-- old size, and a member still running with the old size overwrote the new size's row: the
-- next member to start after a resize could then begin past events nobody handled. With the
-- size in the key, every size keeps its own rows until every member of the current size is
-- past them (the consumer's maintenance deletes them then). SQLite cannot change a primary
-- key in place, so the table is rebuilt.
CREATE TABLE eventodb_kit_consumer_positions_0005 (
    namespace       TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    consumer        TEXT        NOT NULL,
    -- 0 for a consumer without a group.
    group_member    INTEGER     NOT NULL DEFAULT 0,
    -- 1 for a consumer without a group.
    group_size      INTEGER     NOT NULL DEFAULT 1,
    global_position INTEGER     NOT NULL,
    updated_at      TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, category, consumer, group_size, group_member)
);
INSERT INTO eventodb_kit_consumer_positions_0005
    (namespace, category, consumer, group_member, group_size, global_position, updated_at)
SELECT namespace, category, consumer, group_member, group_size, global_position, updated_at
FROM eventodb_kit_consumer_positions;
DROP TABLE eventodb_kit_consumer_positions;
ALTER TABLE eventodb_kit_consumer_positions_0005 RENAME TO eventodb_kit_consumer_positions;

-- Events a plain consumer handled, one row per saved batch (its event ids as a JSON array):
-- a row per event cost a plain consumer an index insertion per event, which bounded it well
-- below the rate it reads at. Per-event rows stay for what needs one (a transactional
-- handler's claim, a skipped or released event).
CREATE TABLE eventodb_kit_processed_batches (
    namespace      TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    consumer       TEXT    NOT NULL,
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    event_ids      TEXT    NOT NULL,
    processed_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX eventodb_kit_processed_batches_position
    ON eventodb_kit_processed_batches (namespace, category, consumer, last_position);
