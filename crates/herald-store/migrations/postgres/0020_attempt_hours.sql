-- Attempts counted per endpoint and hour, for the chart of a tenant's attempts
-- (`GET /api/v1/tenants/{tenant}/stats` and the dashboard). The chart used to find the last
-- hours' attempts through every delivery the tenant had, which no index orders by time: its
-- cost grew with the tenant's history, not with the hours shown. Each batch of recorded
-- attempts now adds to its endpoints' rows for the hour, one row per endpoint, hour and
-- worker (so two processes never wait on each other's rows), and the chart reads at most a
-- week of them. Rows older than eight days are deleted by retention; an endpoint's go with it
-- (no foreign key: its check would lock the endpoint's row, and fail a whole batch of
-- attempts when the endpoint is deleted meanwhile). Pages are left half empty so adding to a
-- row is a HOT update.
CREATE TABLE attempt_hours (
    endpoint_id TEXT NOT NULL,
    hour        BIGINT NOT NULL, -- the hour's start, in milliseconds since the epoch
    worker      TEXT NOT NULL,
    succeeded   BIGINT NOT NULL,
    failed      BIGINT NOT NULL,
    total_ms    BIGINT NOT NULL,
    max_ms      BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, hour, worker)
) WITH (fillfactor = 50);
-- What retention deletes: a row gets its entry once, when its hour begins; adding to it
-- leaves the entry as it is.
CREATE INDEX attempt_hours_by_hour ON attempt_hours (hour);

-- The last eight days of attempts already recorded, so the chart does not start empty. Only
-- those of deliveries made in those days: their partitions are all that is read (a month of
-- partitions at scale would make the migration read every attempt kept); an older delivery
-- retried in the last week has that attempt left out of the chart, not of the log.
INSERT INTO attempt_hours
SELECT d.endpoint_id, a.started_at - a.started_at % 3600000, '',
       count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299),
       count(*) FILTER (WHERE a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299),
       sum(a.duration_ms), max(a.duration_ms)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.started_at >= (extract(epoch FROM now())::bigint - 8 * 86400) * 1000
  AND a.delivery_id >= 'dlv_' || herald_ulid_floor((extract(epoch FROM now())::bigint - 8 * 86400) * 1000)
  AND d.id >= 'dlv_' || herald_ulid_floor((extract(epoch FROM now())::bigint - 8 * 86400) * 1000)
GROUP BY 1, 2;
