-- eventodb-kit 0015: a message id is unique per namespace, as in EventoDB (PostgreSQL).
--
-- Each namespace is a store of its own, so EventoDB takes the same id in two namespaces. The
-- outbox made ids unique across all of them: two tenants of one database that derive ids
-- from their own keys (a UUIDv5 of an order number) met `OutboxDuplicateId` for events
-- EventoDB would have taken. Every lookup by id already names the namespace.
--
-- Building the new index reads the table and blocks writes to it meanwhile: apply it when
-- the outbox is small or writes can wait.
ALTER TABLE eventodb_kit_outbox DROP CONSTRAINT eventodb_kit_outbox_id_key;
ALTER TABLE eventodb_kit_outbox
    ADD CONSTRAINT eventodb_kit_outbox_id_key UNIQUE (namespace, id);
