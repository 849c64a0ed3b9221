#!/usr/bin/env bash
# A tenant with a long history, as the delivery log and the chart read it: one tenant and
# endpoint made through the API, then N events (default 300,000) with a delivery each, spread
# over the last 30 days and written straight into the database (a few dead, none pending),
# then each read the API and the dashboard make, timed.
#
#   scripts/large-tenant.sh target/release/herald [N]                 (embedded SQLite)
#   scripts/large-tenant.sh target/release/herald [N] postgres://postgres@127.0.0.1:5432/test
#   ENDPOINTS=100 scripts/large-tenant.sh …   (the deliveries shared among 100 endpoints: more
#     than the log reads one by one)
#
# On PostgreSQL it makes a database of its own on that server (dropped at the end) with the
# 30 days' partitions a month of retention leaves, writes the rows as herald does (the attempt
# that succeeded in its delivery's row, the chart's counts per hour), and times each read
# twice: before the server has statistics of the new rows, as on a young day before
# autovacuum gets to it, and after `ANALYZE`.
#
# Run it with two binaries to compare them. Needs python3 and curl, and psql for PostgreSQL;
# herald listens on 127.0.0.1:8831 and is stopped at the end.
set -euo pipefail
herald=$(realpath "$1")
n=${2:-300000}
endpoints=${ENDPOINTS:-1}
admin_url=${3:-sqlite}
dir=$(mktemp -d)
pid=
db=herald_large_$$
if [ "$admin_url" = sqlite ]; then
  database_url="sqlite://$dir/herald.db"
else
  database_url="${admin_url%/*}/$db"
fi
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  [ "$admin_url" = sqlite ] || psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
token=hrld_large-tenant-measurement-token-0000000000
base=http://127.0.0.1:8831
start() {
  HERALD_ADMIN_TOKEN=$token "$herald" serve --addr 127.0.0.1:8831 --allow-target 127.0.0.1 \
    --database-url "$database_url" >>"$dir/log" 2>&1 &
  pid=$!
  until curl -sf "$base/ready" >/dev/null; do sleep 0.02; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
# One value the database answers `$1` with.
ask() {
  if [ "$admin_url" = sqlite ]; then
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$dir/herald.db" "$1"
  else
    psql -At "$database_url" -c "$1"
  fi
}

[ "$admin_url" = sqlite ] || psql -q "$admin_url" -c "CREATE DATABASE $db"
start
auth="authorization: Bearer $token"
curl -sf -X POST "$base/api/v1/tenants" -H "$auth" -H 'content-type: application/json' \
  -d '{"id": "acme"}' >/dev/null
for _ in $(seq "$endpoints"); do
  curl -sf -X POST "$base/api/v1/tenants/acme/endpoints" -H "$auth" \
    -H 'content-type: application/json' -d '{"url": "http://127.0.0.1:9/hooks"}' >/dev/null
done
stop

if [ "$admin_url" = sqlite ]; then
python3 - "$dir/herald.db" "$n" <<'PY'
import os, random, sqlite3, sys, time
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
def ulid(ms):
    n = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
endpoints = [row[0] for row in c.execute("SELECT id FROM endpoints ORDER BY id")]
tenant = "acme"
now = int(time.time() * 1000)
events, deliveries, attempts = [], [], []
for t in sorted(now - random.randrange(30 * 86_400_000) for _ in range(n)):
    event, delivery = "evt_" + ulid(t), "dlv_" + ulid(t)
    ok = random.random() > 0.0001
    events.append((event, tenant, "new-subscription", '{"username":"rick"}', t))
    endpoint = endpoints[len(deliveries) % len(endpoints)]
    deliveries.append((delivery, event, endpoint, "succeeded" if ok else "dead", 1, t, t + 20))
    attempts.append(("att_" + ulid(t + 20), delivery, t + 5, 15, 200 if ok else 500, "{}", "{}"))
c.executemany("INSERT INTO events (id, tenant_id, event_type, payload, created_at) "
              "VALUES (?, ?, ?, ?, ?)", events)
c.executemany("INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, created_at, "
              "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", deliveries)
c.executemany("INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, "
              "request_headers, response_headers) VALUES (?, ?, ?, ?, ?, ?, ?)", attempts)
c.commit()
c.execute("ANALYZE")
dead = sum(1 for d in deliveries if d[3] == "dead")
print(f"{n} events, deliveries and attempts over 30 days ({dead} dead)")
PY
else
psql -q -v ON_ERROR_STOP=1 -v n="$n" "$database_url" <<'SQL'
-- The 30 days before today, named as herald names them (crates/herald-store/src/partitions.rs).
DO $$
DECLARE
    today BIGINT := floor(extract(epoch FROM now()) / 86400)::bigint * 86400000;
    day BIGINT;
    t RECORD;
BEGIN
    FOR d IN 1 .. 30 LOOP
        day := today - d::bigint * 86400000;
        FOR t IN SELECT * FROM (VALUES ('events', 'evt_', ''),
                ('deliveries', 'dlv_', ' WITH (fillfactor = 40)'), ('attempts', 'dlv_', ''))
                AS v (name, prefix, storage) LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                t.name || to_char(to_timestamp(day / 1000) AT TIME ZONE 'UTC', '"_p"YYYYMMDD'),
                t.name, t.prefix || herald_ulid_floor(day),
                t.prefix || herald_ulid_floor(day + 86400000)) || t.storage;
        END LOOP;
    END LOOP;
END
$$;
CREATE TEMP TABLE made AS
    SELECT g, at, random() > 0.0001 AS ok,
           left(herald_ulid_floor(at), 10) || upper(substr(md5(g || 'e'), 1, 16)) AS event,
           left(herald_ulid_floor(at), 10) || upper(substr(md5(g || 'd'), 1, 16)) AS delivery
    FROM (SELECT g, (extract(epoch FROM now()) * 1000)::bigint
                    - (random() * 30 * 86400000)::bigint AS at
          FROM generate_series(1, :n) AS g) AS r;
CREATE TEMP TABLE numbered AS
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM endpoints;
INSERT INTO events (id, tenant_id, event_type, payload, created_at)
    SELECT 'evt_' || event, 'acme', 'new-subscription', '{"username":"rick"}', at
    FROM made ORDER BY at;
INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, created_at, updated_at,
        success_started_at, success_duration_ms, success_status_code,
        success_request_headers, success_response_headers)
    SELECT 'dlv_' || delivery, 'evt_' || event, p.id,
           CASE WHEN ok THEN 'succeeded' ELSE 'dead' END, 1, at, at + 20,
           CASE WHEN ok THEN at + 5 END, CASE WHEN ok THEN 15 END, CASE WHEN ok THEN 200 END,
           CASE WHEN ok THEN '{}' END, CASE WHEN ok THEN '{}' END
    FROM made JOIN numbered p ON p.i = made.g % (SELECT count(*) FROM numbered) ORDER BY at;
INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code,
        request_headers, response_headers)
    SELECT 'att_' || delivery, 'dlv_' || delivery, at + 5, 15, 500, '{}', '{}'
    FROM made WHERE NOT ok;
INSERT INTO attempt_hours (endpoint_id, hour, worker, succeeded, failed, total_ms, max_ms)
    SELECT p.id, (at + 5) / 3600000 * 3600000, 'large-tenant', count(*) FILTER (WHERE ok),
           count(*) FILTER (WHERE NOT ok), 15 * count(*), 15
    FROM made JOIN numbered p ON p.i = made.g % (SELECT count(*) FROM numbered) GROUP BY 1, 2;
SELECT count(*) || ' events, deliveries and successes over 30 days ('
       || count(*) FILTER (WHERE NOT ok) || ' dead)' FROM made;
SQL
fi

# A delivery, its event and its endpoint from the middle of the history, and the day around
# it, for the reads by id and by time.
delivery=$(ask "SELECT id FROM deliveries ORDER BY id LIMIT 1 OFFSET $((n / 2))")
event=$(ask "SELECT event_id FROM deliveries WHERE id = '$delivery'")
endpoint=$(ask "SELECT endpoint_id FROM deliveries WHERE id = '$delivery'")
since=$(ask "SELECT created_at FROM deliveries WHERE id = '$delivery'")
day() { date -u -d "@$(( since / 1000 + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }
window="since=$(day -43200)&until=$(day 43200)"

reads() {
  for path in stats "stats?hours=168" deliveries "deliveries?state=dead" \
    "deliveries?state=pending" "deliveries?event_type=nothing" "deliveries?endpoint=$endpoint" \
    "deliveries?event=$event" "deliveries?$window" "deliveries?after=$delivery" \
    "deliveries/$delivery" events "events?after=$event" \
    "events?event_type=nothing" "events/$event"; do
    curl -sf -o /dev/null "$base/api/v1/tenants/acme/$path" -H "$auth" ||
      { echo "GET $path failed" >&2; exit 1; }
    times=$(for _ in 1 2 3 4 5; do
      curl -s -o /dev/null -w '%{time_total} ' "$base/api/v1/tenants/acme/$path" -H "$auth"
    done)
    label=${path//$delivery/dlv_…}
    label=${label//$event/evt_…}
    label=${label//$endpoint/ep_…}
    label=${label//$window/since=…\&until=…}
    python3 -c "import sys; t = sorted(float(x) * 1000 for x in sys.argv[2:]); \
print(f'GET {sys.argv[1]:<32} median {t[2]:7.1f} ms  (min {t[0]:.1f}, max {t[4]:.1f})')" \
      "$label" $times
  done
}

start
if [ "$admin_url" = sqlite ]; then
  reads
else
  echo "before ANALYZE:"
  reads
  if [ -n "${PARTS_ONLY:-}" ]; then
    psql -q "$database_url" -At -c "SELECT 'ANALYZE ' || c.oid::regclass || ';' FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relkind = 'r'" | psql -q "$database_url"
    echo "after ANALYZE of the partitions:"
    reads
  fi
  psql -q "$database_url" -c ANALYZE
  echo "after ANALYZE:"
  reads
fi
