-- The delivery log: what each attempt sent and got back, listing by time, and replay jobs.
ALTER TABLE attempts ADD COLUMN request_headers TEXT NOT NULL DEFAULT '{}';   -- JSON object
ALTER TABLE attempts ADD COLUMN response_headers TEXT NOT NULL DEFAULT '{}';  -- JSON object

CREATE TABLE replays (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    since       INTEGER NOT NULL,
    until       INTEGER NOT NULL,   -- events accepted later are not the replay's
    total       INTEGER NOT NULL,
    done        INTEGER NOT NULL,
    cursor      TEXT,               -- the last event given a delivery
    state       TEXT NOT NULL,      -- running, finished
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX replays_running ON replays (state) WHERE state = 'running';

-- Keys the service makes for itself, shared by every process on the database (the key that
-- signs dashboard links).
CREATE TABLE server_keys (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
