-- eventodb-kit 0014: what a consumer last said of itself (PostgreSQL).
--
-- An operator could see a consumer's position but not whether it still ran: a consumer
-- stopped by its failure policy, or whose process died, looked the same as a running one
-- with nothing to do. Each member now records when it started and, at least once per poll
-- interval, that it is alive (`seen_at`, with the interval it promised in `heartbeat_ms`),
-- and when its task ended and why (`stopped_at`, `stop_error`; no error for a shutdown).
ALTER TABLE eventodb_kit_consumer_positions
    ADD COLUMN seen_at      TIMESTAMPTZ,
    ADD COLUMN heartbeat_ms BIGINT,
    ADD COLUMN stopped_at   TIMESTAMPTZ,
    ADD COLUMN stop_error   TEXT;
