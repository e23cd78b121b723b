-- eventodb-kit 0011: a running consumer notices that an operator reset its position (SQLite).
--
-- A reset moved the position back, and a consumer still running saved its own position over
-- it at its next save ("never move back" let the higher position win): the reset was undone
-- without a word. Each reset now counts here, and a consumer saves only over the count it
-- read; when the count moved, it drops what it handled since and starts again from the reset
-- position.
ALTER TABLE eventodb_kit_consumer_positions ADD COLUMN resets INTEGER NOT NULL DEFAULT 0;
