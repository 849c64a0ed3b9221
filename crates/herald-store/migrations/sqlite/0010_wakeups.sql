-- An accept used to move its endpoint's turn by updating the endpoint's queue row, which waits
-- while a claim holds that row locked: under load, accepts for a busy endpoint took turns with
-- its claims. Now an accept adds a row here, which takes no lock another writer holds, and the
-- next claim folds the rows it can see into the queue. One an accept has not committed yet stays
-- for the claim after, which its commit wakes.
CREATE TABLE endpoint_wakeups (
    endpoint_id TEXT NOT NULL,
    due_at      BIGINT NOT NULL
);
