-- Batches back into per-event rows (type and stream are not kept; the batch's last position
-- stands for each event's, so they are purged no earlier than before).
INSERT INTO eventodb_kit_processed_events
    (namespace, category, consumer, event_id, event_type, stream, global_position)
SELECT b.namespace, b.category, b.consumer, e, '', '', b.last_position
FROM eventodb_kit_processed_batches b CROSS JOIN LATERAL jsonb_array_elements_text(b.event_ids) AS e
ON CONFLICT DO NOTHING;
DROP TABLE eventodb_kit_processed_batches;

-- Back to one row per member: keep each member's lowest position (events above it that
-- were handled already are skipped by their processed records; none is lost).
DELETE FROM eventodb_kit_consumer_positions p
USING eventodb_kit_consumer_positions q
WHERE p.namespace = q.namespace AND p.category = q.category AND p.consumer = q.consumer
  AND p.group_member = q.group_member AND p.group_size <> q.group_size
  AND (p.global_position, p.group_size) > (q.global_position, q.group_size);
ALTER TABLE eventodb_kit_consumer_positions
    DROP CONSTRAINT eventodb_kit_consumer_positions_pkey;
ALTER TABLE eventodb_kit_consumer_positions
    ADD PRIMARY KEY (namespace, category, consumer, group_member);
