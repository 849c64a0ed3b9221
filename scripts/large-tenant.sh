#!/usr/bin/env bash
# A tenant with a long history, as the delivery log and the chart read it: herald on embedded
# SQLite, one tenant and endpoint made through the API, then N events (default 300,000) with a
# delivery and an attempt each, spread over the last 30 days and written straight into the
# database (a few dead, none pending), then each read the API and the dashboard make, timed.
#
#   scripts/large-tenant.sh target/release/herald [N]
#
# Run it with two binaries to compare them. Needs python3 and curl; herald listens on
# 127.0.0.1:8831 and is stopped at the end; the database is in a temporary directory.
set -euo pipefail
herald=$(realpath "$1")
n=${2:-300000}
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
token=hrld_large-tenant-measurement-token-0000000000
base=http://127.0.0.1:8831
start() {
  HERALD_ADMIN_TOKEN=$token "$herald" serve --addr 127.0.0.1:8831 --allow-target 127.0.0.1 \
    --database-url "sqlite://$dir/herald.db" >>"$dir/log" 2>&1 &
  pid=$!
  until curl -sf "$base/ready" >/dev/null; do sleep 0.02; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

start
auth="authorization: Bearer $token"
curl -sf -X POST "$base/api/v1/tenants" -H "$auth" -H 'content-type: application/json' \
  -d '{"id": "acme"}' >/dev/null
curl -sf -X POST "$base/api/v1/tenants/acme/endpoints" -H "$auth" \
  -H 'content-type: application/json' -d '{"url": "http://127.0.0.1:9/hooks"}' >/dev/null
stop

python3 - "$dir/herald.db" "$n" <<'PY'
import os, random, sqlite3, sys, time
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
def ulid(ms):
    n = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
endpoint, tenant = c.execute("SELECT id, tenant_id FROM endpoints").fetchone()
now = int(time.time() * 1000)
events, deliveries, attempts = [], [], []
for t in sorted(now - random.randrange(30 * 86_400_000) for _ in range(n)):
    event, delivery = "evt_" + ulid(t), "dlv_" + ulid(t)
    ok = random.random() > 0.0001
    events.append((event, tenant, "new-subscription", '{"username":"rick"}', t))
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

start
for path in stats "stats?hours=168" deliveries "deliveries?state=dead" \
  "deliveries?state=pending" "deliveries?event_type=nothing" events "events?event_type=nothing"; do
  times=$(for _ in 1 2 3 4 5; do
    curl -s -o /dev/null -w '%{time_total} ' "$base/api/v1/tenants/acme/$path" -H "$auth"
  done)
  python3 -c "import sys; t = sorted(float(x) * 1000 for x in sys.argv[2:]); \
print(f'GET {sys.argv[1]:<32} median {t[2]:7.1f} ms  (min {t[0]:.1f}, max {t[4]:.1f})')" \
    "$path" $times
done
