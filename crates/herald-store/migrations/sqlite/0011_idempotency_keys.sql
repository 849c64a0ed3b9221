-- Idempotency keys in a table of their own, as on PostgreSQL (where events are partitioned and
-- a unique index on them can no longer hold a key), so both databases run the same queries.
CREATE TABLE idempotency_keys (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_event ON idempotency_keys (event_id);
INSERT INTO idempotency_keys (tenant_id, key, event_id)
    SELECT tenant_id, idempotency_key, id FROM events WHERE idempotency_key IS NOT NULL;
DROP INDEX events_by_idempotency_key;
