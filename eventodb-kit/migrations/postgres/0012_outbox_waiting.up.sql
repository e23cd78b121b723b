-- eventodb-kit 0012: the next retry is found without reading the backlog (PostgreSQL).
--
-- When nothing can be claimed, the sender sleeps until the earliest row it put off is due.
-- Finding that row read every pending row: 155 ms with a million rows pending, on every
-- wake-up, and while EventoDB is down every commit's NOTIFY wakes the sender, at the very time
-- a backlog builds. Only a row the sender put off (or an operator retried) has a
-- `next_attempt_at` after its `created_at`: an insert leaves both at the transaction's `now()`.
-- So this index holds those few rows, and the application's inserts add nothing to it.
--
-- `CREATE INDEX` blocks writes to the table while it reads it: apply it when the outbox is
-- small or writes can wait.
CREATE INDEX eventodb_kit_outbox_waiting
    ON eventodb_kit_outbox (namespace, next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at > created_at;
