-- A worker that is stopping: it finishes what it has in flight (and is still reaped if it dies
-- meanwhile), but serves no endpoint, so the others take its endpoints at once. Each endpoint
-- is served by one of the registered workers that are not retiring (crates/herald-store/src/sql/claim.rs).
ALTER TABLE workers ADD COLUMN retiring BOOLEAN NOT NULL DEFAULT false;
