-- Whether an event was sent from the dashboard or the API's "send a test event", so the log
-- can say so: it is otherwise an ordinary event of a declared type.
ALTER TABLE events ADD COLUMN test BOOLEAN NOT NULL DEFAULT false;
