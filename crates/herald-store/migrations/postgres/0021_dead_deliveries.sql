-- A tenant's dead deliveries, by endpoint and newest first: what the delivery log's `dead`
-- filter (the dashboard's "what failed") reads. Without it that filter read every delivery
-- of the endpoint to find the few that died (142 ms for 300,000 on SQLite, and growing with
-- the history kept). Only dead deliveries enter it: the hot path, whose deliveries succeed,
-- writes nothing to it.
CREATE INDEX deliveries_dead ON deliveries (endpoint_id, id) WHERE state = 'dead';
