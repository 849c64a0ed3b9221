-- The worker serving an endpoint, and until when it keeps it: other processes' claims pass the
-- endpoint over meanwhile, so two processes do not take turns at one endpoint's queue row, each
-- claim and commit serving half as many deliveries (docs/scaling.md, "Two processes on one
-- database"). NULL: no worker keeps it.
ALTER TABLE endpoint_queues ADD COLUMN served_by TEXT;
ALTER TABLE endpoint_queues ADD COLUMN served_until BIGINT;
