-- eventodb-kit 0007: leave room on each outbox page for the sender's updates.
--
-- A claim writes the lease columns of every row it takes, and none of them is indexed: with
-- free space on the page PostgreSQL updates the row in place (a HOT update) instead of adding
-- an entry to every index for the new row version. Filled pages (fillfactor 100) made every
-- claim a full-index update. Measured on 20,000 rows over 100 streams: 752 bytes of WAL per
-- leased row at 100, 493 at 70. Applies to pages written from now on.
ALTER TABLE eventodb_kit_outbox SET (fillfactor = 70);
