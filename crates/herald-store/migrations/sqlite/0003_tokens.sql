-- API credentials. Only a SHA-256 hash of each token is kept; the token itself is shown once.
-- tenant_id NULL marks an admin token.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,       -- the token's first characters, to recognise it in a list
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX tokens_by_tenant ON tokens (tenant_id, id);
