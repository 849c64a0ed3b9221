-- Retention deletes the oldest events first, a small batch at a time.
CREATE INDEX events_by_age ON events (created_at);
