-- Rows under a stream lease may have been sent without being recorded.
UPDATE eventodb_kit_outbox AS o
SET outcome_unknown = TRUE
FROM eventodb_kit_outbox_leases AS l
WHERE o.status = 'pending' AND l.namespace = o.namespace AND l.stream = o.stream
  AND o.seq BETWEEN l.from_seq AND l.through_seq;
DROP TABLE eventodb_kit_outbox_leases;
