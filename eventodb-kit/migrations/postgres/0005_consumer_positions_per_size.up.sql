-- eventodb-kit 0005: one position row per group member *and* group size (PostgreSQL).
--
-- A member's position only says something about its share under the group size it ran
-- with. Keyed by member alone, a member restarted with a new size overwrote its row of the
-- old size, and a member still running with the old size overwrote the new size's row: the
-- next member to start after a resize could then begin past events nobody handled. With the
-- size in the key, every size keeps its own rows until every member of the current size is
-- past them (the consumer's maintenance deletes them then).
ALTER TABLE eventodb_kit_consumer_positions
    DROP CONSTRAINT eventodb_kit_consumer_positions_pkey;
ALTER TABLE eventodb_kit_consumer_positions
    ADD PRIMARY KEY (namespace, category, consumer, group_size, group_member);
