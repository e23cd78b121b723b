-- eventodb-kit 0001: the transactional outbox (PostgreSQL).
--
-- One row per event written inside an application transaction. The sender claims rows in
-- `seq` order per stream, writes them to EventoDB with the row's `id`, and records the result.
CREATE TABLE eventodb_kit_outbox (
    -- Ordering key: per stream, rows are sent in ascending `seq`.
    seq              BIGSERIAL PRIMARY KEY,
    -- The message id EventoDB will store (fixed when the row is written; UUIDv7 by default).
    id               UUID        NOT NULL,
    -- The EventoDB namespace (taken from the token).
    namespace        TEXT        NOT NULL,
    stream           TEXT        NOT NULL,
    message_type     TEXT        NOT NULL,
    data             JSONB       NOT NULL,
    metadata         JSONB,
    -- `stream.write` options as sent (besides the id): `{"expectedVersion": n}` or `{}`.
    write_options    JSONB       NOT NULL DEFAULT '{}'::jsonb,
    expected_version BIGINT,
    -- Producer idempotency: unique per namespace (NULLs never collide).
    idempotency_key  TEXT,
    -- SHA-256 of the canonical content, to tell a replay from a reused key.
    content_hash     TEXT        NOT NULL,
    -- pending | sent | failed | discarded
    status           TEXT        NOT NULL DEFAULT 'pending',
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error       TEXT,
    -- An attempt may have reached EventoDB without us learning the result: check the stream
    -- for `id` before sending again.
    outcome_unknown  BOOLEAN     NOT NULL DEFAULT FALSE,
    -- Lease of a sender process on this row (the head rows of a stream act as its lock).
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    -- What `stream.write` returned, and when.
    position         BIGINT,
    global_position  BIGINT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ,
    -- Set once the event was read back from EventoDB at the recorded position.
    verified_at      TIMESTAMPTZ,
    CONSTRAINT eventodb_kit_outbox_id_key UNIQUE (id),
    CONSTRAINT eventodb_kit_outbox_idempotency_key UNIQUE (namespace, idempotency_key),
    CONSTRAINT eventodb_kit_outbox_status_check
        CHECK (status IN ('pending', 'sent', 'failed', 'discarded'))
);

-- Unsent rows per stream, in order: the claim's "is this row the head of its stream" probe.
CREATE INDEX eventodb_kit_outbox_unsent_stream
    ON eventodb_kit_outbox (namespace, stream, seq)
    WHERE status IN ('pending', 'failed');

-- Pending rows in order: what the claim pages through.
CREATE INDEX eventodb_kit_outbox_pending
    ON eventodb_kit_outbox (namespace, seq)
    WHERE status = 'pending';

-- Sent rows by age: purge and verification.
CREATE INDEX eventodb_kit_outbox_sent
    ON eventodb_kit_outbox (namespace, sent_at)
    WHERE status = 'sent';

-- Wake the sender when a transaction that wrote to the outbox commits (NOTIFY is delivered
-- at commit, never for a rolled-back transaction).
CREATE FUNCTION eventodb_kit_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eventodb_kit_outbox', NEW.namespace);
    RETURN NULL;
END;
$$;

CREATE TRIGGER eventodb_kit_outbox_notify
    AFTER INSERT ON eventodb_kit_outbox
    FOR EACH ROW EXECUTE FUNCTION eventodb_kit_outbox_notify();
