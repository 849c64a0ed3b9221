-- The worker serving an endpoint, and until when it keeps it (PostgreSQL's processes share
-- endpoints this way; SQLite's one process never keeps one, but its schema stays the same).
ALTER TABLE endpoint_queues ADD COLUMN served_by TEXT;
ALTER TABLE endpoint_queues ADD COLUMN served_until BIGINT;
