-- Retention finds the oldest events by their ids (made at acceptance, so ordered by it) through
-- the primary key; this index was one more entry written for every event.
DROP INDEX events_by_age;
