-- A worker's heartbeat: it sets `seen_at` every second. One not seen for 5 s (a process that
-- is alive but stalled: stopped, swapping, wedged) serves no endpoint, so the others take its
-- endpoints; its leased deliveries wait for their leases to run out, as before
-- (crates/herald-store/src/sql/claim.rs).
ALTER TABLE workers ADD COLUMN seen_at TIMESTAMPTZ NOT NULL DEFAULT now();
