#!/usr/bin/env bash
# End to end as a user would measure it (issue 16's harness): wrk posts events for 10 s through
# herald's HTTP API, 32 connections, into `herald serve` on a fresh PostgreSQL database with
# default settings; nginx receives the deliveries. Prints the raw wrk-to-nginx rate measured in
# the same run, the ingestion rate, the end-to-end rate (accepted events / time from the first
# post to the last delivery) and its ratio to raw; on PostgreSQL also the transactions and the
# bytes of WAL a delivery cost.
#
#   scripts/harness-postgres.sh target/release/herald [postgres://postgres@127.0.0.1:5432/test]
#   scripts/harness-postgres.sh target/release/herald sqlite   (issue 10's: embedded SQLite)
#   PROCESSES=2 scripts/harness-postgres.sh target/release/herald   (two `herald serve` on one
#     database, each posted to by one of the two wrk processes; with one, both post to it)
#
# Needs wrk, nginx, psql and curl (apt-get install wrk nginx-light postgresql-client curl);
# everything it starts listens on 127.0.0.1 and is stopped at the end.
set -euo pipefail
herald=$(realpath "$1")
admin_url=${2:-postgres://postgres@127.0.0.1:5432/test}
dir=$(mktemp -d)
db=herald_harness_$$
nginx_port=18080
herald_port=18000
herald_pids=()
processes=${PROCESSES:-1}

cleanup() {
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  for pid in "${herald_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ "$admin_url" = sqlite ] || psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log $dir/access.log;
  server { listen 127.0.0.1:$nginx_port; location / { return 200 "ok"; } }
}
CONF
body='{"username":"rick","monthly_fee":9.99,"start_date":"2026-11-22T08:00:00Z"}'
cat >"$dir/raw.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '$body'
LUA
cat >"$dir/events.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer harness-token"
wrk.body = '{"event_type":"new-subscription","payload":$body}'
LUA

nginx -c "$dir/nginx.conf"
sleep 0.5
raw=$(wrk -t2 -c32 -d10s -s "$dir/raw.lua" "http://127.0.0.1:$nginx_port/hook" | awk '/Requests\/sec/ {print $2}')
: >"$dir/access.log"

if [ "$admin_url" = sqlite ]; then
  database_url="sqlite://$dir/herald.db"
else
  psql -q "$admin_url" -c "CREATE DATABASE $db"
  database_url="${admin_url%/*}/$db"
fi
[ "$processes" = 1 ] || [ "$admin_url" != sqlite ] || { echo "SQLite serves one process" >&2; exit 1; }
for ((i = 0; i < processes; i++)); do
  HERALD_ADMIN_TOKEN=harness-token "$herald" serve --database-url "$database_url" \
    --addr "127.0.0.1:$((herald_port + i))" --allow-target 127.0.0.0/8 >"$dir/herald-$i.log" 2>&1 &
  herald_pids+=($!)
  until curl -sf "http://127.0.0.1:$((herald_port + i))/ready" >/dev/null; do sleep 0.2; done
done
base="http://127.0.0.1:$herald_port"
call() { curl -sf -X POST "$base$1" -H 'authorization: Bearer harness-token' \
  -H 'content-type: application/json' -d "$2" >/dev/null; }
call /api/v1/tenants '{"id":"bench"}'
call /api/v1/tenants/bench/endpoints "{\"url\":\"http://127.0.0.1:$nginx_port/hook\"}"

# What the database did for the deliveries (issue 16's first figures: 0.68 transactions and
# 3.15 KB of WAL a delivery): counted from here until herald has stopped, when every backend
# has reported. WAL is the whole server's: run nothing else on it meanwhile.
counters() {
  psql -At -F ' ' "$database_url" -c "SELECT xact_commit + xact_rollback, \
    pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 \
    FROM pg_stat_database WHERE datname = current_database()"
}
[ "$admin_url" = sqlite ] || read -r transactions_before wal_before < <(counters)
start=$(date +%s.%N)
# Two wrk processes of 16 connections each, whatever the number of herald processes, so one
# and two processes are posted to alike.
wrk_pids=()
for i in 0 1; do
  port=$((herald_port + i % processes))
  wrk -t1 -c16 -d10s -s "$dir/events.lua" "http://127.0.0.1:$port/api/v1/tenants/bench/events" \
    >"$dir/wrk-$i.txt" &
  wrk_pids+=($!)
done
wait "${wrk_pids[@]}"
ingest=$(awk '/Requests\/sec/ {sum += $2} END {print sum}' "$dir"/wrk-*.txt)
if [ "$admin_url" = sqlite ]; then
  accepted=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM events").fetchone()[0])' "$dir/herald.db")
else
  accepted=$(psql -At "$database_url" -c "SELECT count(*) FROM events")
fi
deadline=$(( $(date +%s) + 120 ))
while [ "$(wc -l <"$dir/access.log")" -lt "$accepted" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "not every event arrived within 120 s" >&2; exit 1; }
  sleep 0.05
done
end=$(date +%s.%N)
cost=
if [ "$admin_url" != sqlite ]; then
  kill "${herald_pids[@]}"
  wait "${herald_pids[@]}" 2>/dev/null || true
  herald_pids=()
  sleep 1
  read -r transactions_after wal_after < <(counters)
  cost="$((transactions_after - transactions_before)) $((wal_after - wal_before))"
fi
python3 - "$raw" "$ingest" "$accepted" "$start" "$end" $cost <<'PY'
import sys
raw, ingest, accepted = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
e2e = accepted / (float(sys.argv[5]) - float(sys.argv[4]))
print(f"raw wrk to nginx {raw:,.0f}/s; ingestion {ingest:,.0f}/s; {accepted:,} events delivered "
      f"end to end at {e2e:,.0f}/s: {e2e / raw:.4f} of raw")
if len(sys.argv) > 7:
    transactions, wal = int(sys.argv[6]), int(sys.argv[7])
    print(f"PostgreSQL: {transactions / accepted:.3f} transactions and {wal / accepted:,.0f} bytes "
          f"of WAL a delivery")
PY
