-- Rows under a stream lease may have been sent without being recorded.
UPDATE eventodb_kit_outbox
SET outcome_unknown = 1
WHERE status = 'pending' AND EXISTS (
    SELECT 1 FROM eventodb_kit_outbox_leases AS l
    WHERE l.namespace = eventodb_kit_outbox.namespace
      AND l.stream = eventodb_kit_outbox.stream
      AND eventodb_kit_outbox.seq BETWEEN l.from_seq AND l.through_seq);
DROP TABLE eventodb_kit_outbox_leases;
