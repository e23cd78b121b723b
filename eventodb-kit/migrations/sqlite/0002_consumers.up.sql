-- eventodb-kit 0002: consumer state (SQLite).

-- Last handled global position of each consumer (and of each member of a consumer group).
CREATE TABLE eventodb_kit_consumer_positions (
    namespace       TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    consumer        TEXT        NOT NULL,
    -- 0 for a consumer without a group.
    group_member    INTEGER     NOT NULL DEFAULT 0,
    -- 1 for a consumer without a group.
    group_size      INTEGER     NOT NULL DEFAULT 1,
    global_position INTEGER     NOT NULL,
    updated_at      TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, category, consumer, group_member)
);

-- Events a consumer has handled. Keyed by consumer, so two consumers never shadow each other;
-- the members of a group share the consumer name.
CREATE TABLE eventodb_kit_processed_events (
    namespace       TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    consumer        TEXT        NOT NULL,
    event_id        TEXT        NOT NULL,
    event_type      TEXT        NOT NULL,
    stream          TEXT        NOT NULL,
    global_position INTEGER     NOT NULL,
    processed_at    TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, category, consumer, event_id)
);

CREATE INDEX eventodb_kit_processed_events_age
    ON eventodb_kit_processed_events (processed_at);

-- Events a consumer gave up on (its failure policy parked them), kept whole for an operator.
CREATE TABLE eventodb_kit_parked_events (
    namespace       TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    consumer        TEXT        NOT NULL,
    event_id        TEXT        NOT NULL,
    stream          TEXT        NOT NULL,
    event_type      TEXT        NOT NULL,
    position        INTEGER     NOT NULL,
    global_position INTEGER     NOT NULL,
    data            TEXT        NOT NULL,
    metadata        TEXT,
    error           TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 1,
    parked_at       TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, category, consumer, event_id)
);

-- Streams a consumer holds back (later events of a stream wait behind a parked one).
CREATE TABLE eventodb_kit_parked_streams (
    namespace       TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    consumer        TEXT        NOT NULL,
    stream          TEXT        NOT NULL,
    -- The parked event that holds the stream back.
    event_id        TEXT        NOT NULL,
    global_position INTEGER     NOT NULL,
    reason          TEXT        NOT NULL,
    parked_at       TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, category, consumer, stream)
);
