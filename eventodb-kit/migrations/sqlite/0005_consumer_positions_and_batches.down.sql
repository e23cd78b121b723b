-- Batches back into per-event rows (type and stream are not kept; the batch's last position
-- stands for each event's, so they are purged no earlier than before).
INSERT INTO eventodb_kit_processed_events
    (namespace, category, consumer, event_id, event_type, stream, global_position)
SELECT b.namespace, b.category, b.consumer, j.value, '', '', b.last_position
FROM eventodb_kit_processed_batches b, json_each(b.event_ids) AS j WHERE true
ON CONFLICT DO NOTHING;
DROP TABLE eventodb_kit_processed_batches;

-- Back to one row per member: keep each member's lowest position (events above it that
-- were handled already are skipped by their processed records; none is lost).
CREATE TABLE eventodb_kit_consumer_positions_0004 (
    namespace       TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    consumer        TEXT        NOT NULL,
    group_member    INTEGER     NOT NULL DEFAULT 0,
    group_size      INTEGER     NOT NULL DEFAULT 1,
    global_position INTEGER     NOT NULL,
    updated_at      TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, category, consumer, group_member)
);
INSERT INTO eventodb_kit_consumer_positions_0004
    (namespace, category, consumer, group_member, group_size, global_position, updated_at)
SELECT namespace, category, consumer, group_member, group_size, global_position, updated_at
FROM eventodb_kit_consumer_positions p
WHERE NOT EXISTS (
    SELECT 1 FROM eventodb_kit_consumer_positions q
    WHERE q.namespace = p.namespace AND q.category = p.category AND q.consumer = p.consumer
      AND q.group_member = p.group_member AND q.group_size <> p.group_size
      AND (q.global_position < p.global_position
           OR (q.global_position = p.global_position AND q.group_size < p.group_size))
);
DROP TABLE eventodb_kit_consumer_positions;
ALTER TABLE eventodb_kit_consumer_positions_0004 RENAME TO eventodb_kit_consumer_positions;
