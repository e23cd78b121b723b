-- eventodb-kit 0010: the next retry is found without reading the backlog (SQLite).
--
-- When nothing can be claimed, the sender sleeps until the earliest row it put off is due.
-- Finding that row read every pending row, on every wake-up, and while EventoDB is down every
-- commit wakes the sender, at the very time a backlog builds. Only a row the sender put off
-- (or an operator retried) has a `next_attempt_at` after its `created_at`: an insert sets both
-- from one `'now'` (stable within a statement). So this index holds those few rows, and the
-- application's inserts add nothing to it.
--
-- Building the index holds the database's write lock: apply it when the outbox is small or
-- writes can wait.
CREATE INDEX eventodb_kit_outbox_waiting
    ON eventodb_kit_outbox (namespace, next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at > created_at;
