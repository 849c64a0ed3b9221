-- The attempt that made a delivery succeed is kept in the delivery's own row, written by the
-- update that marks it succeeded (which writes a new row version anyway), not as a row of its
-- own in `attempts`. On the hot path, where nearly every delivery succeeds at its first
-- attempt, that is one row and one index entry fewer a delivery: 230 bytes of WAL of 2,264
-- through the HTTP API, 240 of 1,279 in the drain (docs/scaling.md). Failed attempts, and an
-- attempt whose lease had run out, stay in `attempts`; a delivery retried by hand moves its
-- success there first (crates/herald-store/src/sql/finish.rs, sql/log.rs). The columns are
-- those of `attempts`; rows already there keep their attempts where they are.
ALTER TABLE deliveries
    ADD COLUMN success_started_at BIGINT,
    ADD COLUMN success_duration_ms BIGINT,
    ADD COLUMN success_status_code INTEGER,
    ADD COLUMN success_response_excerpt TEXT,
    ADD COLUMN success_error TEXT,
    ADD COLUMN success_request_headers TEXT,
    ADD COLUMN success_response_headers TEXT;

-- The row the finish writes is now wider; with half of each page left free (migration 8) a
-- quarter of finishes found no room on their page and went to another (an extra lock record
-- and the old page's pruning), and one claim in seven was not a HOT update. 60% left free
-- keeps both on their page: 90 bytes of WAL a delivery fewer through the API and 120 in the
-- drain, for about 8% more disk a delivery. New pages of the existing partitions follow; new
-- partitions are made so (crates/herald-store/src/partitions.rs).
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits
                WHERE inhparent = 'deliveries'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 40)', part);
    END LOOP;
END
$$;
