-- Deliveries are keyed by their endpoint and id, where they had a primary key on the id and an
-- index on (endpoint, id) beside it: one index fewer, so a delivery writes one index entry
-- fewer when it is accepted and one fewer when it is finished (whose new row version is
-- indexed again), about 190 bytes of WAL of 1,959 through the HTTP API (docs/scaling.md).
-- Every statement names a delivery by its endpoint too: the worker knows it, and the API looks
-- a delivery up through its tenant's endpoints (crates/herald-store/src/sql/log.rs).
-- The key's index is built for every partition: on a large database, stop herald while this
-- runs, as for migration 11. No row moves.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey;
DROP INDEX deliveries_by_endpoint;
ALTER TABLE deliveries ADD PRIMARY KEY (endpoint_id, id);
