-- eventodb-kit 0016: one running instance per consumer member (PostgreSQL).
--
-- Two processes running the same consumer (two replicas of one service, or a deploy that
-- starts the new process before the old one stops) both read the member's share from the
-- same position, and a plain handler ran every event in both. A member's position row now
-- names the instance that runs it (`owner`) until when (`owned_until`, renewed by its
-- heartbeat); other instances stand by and take the row over once it is released or its
-- time has passed. A takeover counts as a reset (`resets`), so whatever the previous owner
-- still saves afterwards is refused.
ALTER TABLE eventodb_kit_consumer_positions
    ADD COLUMN owner       TEXT,
    ADD COLUMN owned_until TIMESTAMPTZ;
