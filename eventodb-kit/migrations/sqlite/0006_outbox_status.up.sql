-- eventodb-kit 0006: indexes that keep the outbox status cheap however many sent rows are kept
-- (health checks and metrics read it every few seconds).

-- Parked rows: counted by status, listed by `failed`.
CREATE INDEX eventodb_kit_outbox_failed
    ON eventodb_kit_outbox (namespace, seq)
    WHERE status = 'failed';

-- Rows whose event EventoDB lost and that were sent again.
CREATE INDEX eventodb_kit_outbox_lost
    ON eventodb_kit_outbox (namespace, seq)
    WHERE requeued > 0;
