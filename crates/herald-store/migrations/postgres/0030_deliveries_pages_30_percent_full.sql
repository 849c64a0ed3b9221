-- Deliveries' pages are filled to 30% on insert, where migration 24 left 40%. A delivery's row
-- changes twice after its insert (the claim's lease, a HOT update; the finish, which is not
-- HOT: `state` is in partial indexes' predicates), and at 40% the finish's new version found no
-- room on its page four times in ten. A version that leaves its page costs a lock record
-- besides the update's, an update record without the prefix and suffix it shares with the old
-- version, and a dead version left behind on the old page until it is vacuumed. At 30% one
-- finish in ten leaves its page. In the benchmark, against the build before in the same hour:
-- 1,650 -> 1,588 bytes of WAL a delivery through the API, 801 -> 729 in the drain, and 1,362 ->
-- 1,120 bytes on disk an event after the drain (20% kept free measured no better for WAL,
-- and worse on disk: 1,596 and 1,443). New pages of the existing partitions follow; new
-- partitions are made so (crates/herald-store/src/partitions.rs).
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits
                WHERE inhparent = 'deliveries'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 30)', part);
    END LOOP;
END
$$;
