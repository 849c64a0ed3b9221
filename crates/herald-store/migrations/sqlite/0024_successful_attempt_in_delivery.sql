-- The attempt that made a delivery succeed is kept in the delivery's own row, written by the
-- update that marks it succeeded, not as a row of its own in `attempts`: on the hot path, one
-- row and one index entry fewer a delivery for the single writer. Failed attempts, and an
-- attempt whose lease had run out, stay in `attempts`; a delivery retried by hand moves its
-- success there first (crates/herald-store/src/sql/finish.rs, sql/log.rs). Rows already there
-- keep their attempts where they are.
ALTER TABLE deliveries ADD COLUMN success_started_at INTEGER;
ALTER TABLE deliveries ADD COLUMN success_duration_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN success_status_code INTEGER;
ALTER TABLE deliveries ADD COLUMN success_response_excerpt TEXT;
ALTER TABLE deliveries ADD COLUMN success_error TEXT;
ALTER TABLE deliveries ADD COLUMN success_request_headers TEXT;
ALTER TABLE deliveries ADD COLUMN success_response_headers TEXT;
