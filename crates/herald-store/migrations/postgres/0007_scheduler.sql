-- The delivery scheduler. Claims go endpoint by endpoint, in turn: each endpoint's queue row
-- says when its next delivery is due, holds its rate limit's token bucket and its circuit
-- breaker, and is what a claim locks, so processes share endpoints without sharing one.
ALTER TABLE endpoints ADD COLUMN rate_limit INTEGER;          -- deliveries per second; NULL: none

CREATE TABLE endpoint_queues (
    endpoint_id     TEXT PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
    due_at          BIGINT,            -- no delivery not in flight is due before this; NULL: none
    tokens          DOUBLE PRECISION NOT NULL DEFAULT 0,   -- the rate limit's bucket, as of tokens_at
    tokens_at       BIGINT NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,            -- attempts failed in a row
    open_until      BIGINT,            -- the circuit is open: no attempt before this
    last_failure_at BIGINT             -- a failure streak goes on only while failures keep coming
);
CREATE INDEX endpoint_queues_due ON endpoint_queues (due_at) WHERE due_at IS NOT NULL;
INSERT INTO endpoint_queues (endpoint_id, due_at)
    SELECT p.id, (SELECT min(d.next_attempt_at) FROM deliveries d
                  WHERE d.endpoint_id = p.id AND d.state = 'pending')
    FROM endpoints p;

-- Ordering keys: for one endpoint, deliveries with the same key go one at a time, in the order
-- their events were accepted (seq). One waiting behind another has no next_attempt_at.
ALTER TABLE events ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN seq BIGINT;
CREATE SEQUENCE delivery_order;

-- Claims read one endpoint's due deliveries; the global due index is no longer read.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_ready ON deliveries (endpoint_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_order ON deliveries (endpoint_id, ordering_key, seq)
    WHERE state = 'pending' AND ordering_key IS NOT NULL;

-- Delivery workers, each alive while its session holds the advisory lock lock_key, so the
-- leases of a process that is gone are taken over at once, not when they run out.
CREATE TABLE workers (
    id         TEXT PRIMARY KEY,
    lock_key   BIGINT NOT NULL,
    started_at BIGINT NOT NULL
);
