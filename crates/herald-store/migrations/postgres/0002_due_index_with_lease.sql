-- Claims skip deliveries whose lease has not expired; with the expiry in the index they are
-- stepped over without reading their rows.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, lease_expires_at) WHERE state = 'pending';
