#!/usr/bin/env bash
# What a change to herald's PostgreSQL tables would do to the WAL a delivery writes, before
# building it. A model of the hot path in plain SQL: tables shaped like herald's (unpartitioned),
# 5,000 deliveries of a 90-byte event to one endpoint, in transactions of 50 rows as group commit
# makes them: the accept (event and delivery), the claim (the lease) and the finish (the attempt
# and the delivery's new state). Prints each phase's WAL per delivery by kind of record
# (`pg_walinspect`), for one schema variant:
#
#   today    the tables as migration 19 leaves them (the benchmark measures 2,336 B; this ~2,280)
#   queue    pending deliveries in a `delivery_queue` table of their own: the claim leases a
#            queue row, the finish deletes it and updates the delivery in place (HOT)
#   uuid     ids as 16-byte `uuid`s instead of 30-character text
#   headers  an attempt's request headers without the two herald can rebuild (`webhook-id` is
#            the event's id, `content-type` is always `application/json`)
#   fill40   `deliveries` pages filled to 40% on insert, not 50%, leaving more room for HOT updates
#   inline   an attempt that succeeded kept in its delivery's row (five more columns), not in a row
#            of its own in `attempts`
#   (`inline` and `fill40` together are herald since migration 24: 1,942 B in the benchmark;
#   with `headers`, 1,959 B on 2026-12-05)
#   fill30   `deliveries` pages filled to 30%
#   keyed    deliveries keyed by (endpoint, id), where they had a primary key on the id beside
#            an index by endpoint: every lookup goes through the endpoint (built: migration 25)
#   tenantkeyed  events keyed by (tenant, id) in the same way, with no primary key on the id
#   noevent  no index of deliveries by event: a delivery's id made from its event's time, so an
#            event's deliveries are a range of delivery ids
#   unqueued no index of pending deliveries: claims walk the endpoint's deliveries from a mark
#            kept per endpoint, so the finish of a success changes no indexed column (HOT)
#   herald since migration 25 is `inline,fill40,headers,keyed`. With `tenantkeyed`, `noevent`,
#   `unqueued`, `uuid` and `fill30` too the model writes about 1,010 B (docs/scaling.md, "What
#   comes next").
#
#   scripts/wal-model.sh today [postgres://postgres@127.0.0.1:5432/test]
#   scripts/wal-model.sh queue,uuid,headers     (several changes together)
#
# Makes the database `herald_wal_model` on that server (superuser: it checkpoints first so that
# no full-page image lands in the figures) and drops it at the end. Needs psql.
set -euo pipefail
variant=${1:?usage: wal-model.sh today|queue|uuid|headers|fill40|fill30|inline|keyed|tenantkeyed|noevent|unqueued[,...] [admin-url]}
admin_url=${2:-postgres://postgres@127.0.0.1:5432/test}
db=herald_wal_model
n=5000
has() { [[ ",$variant," == *",$1,"* ]]; }
for v in ${variant//,/ }; do
  case $v in
  today | queue | uuid | headers | fill40 | fill30 | inline | keyed | tenantkeyed | noevent | unqueued) ;;
  *)
    echo "wal-model.sh: unknown variant '$v' (today, queue, uuid, headers, fill40, fill30, inline, keyed, tenantkeyed, noevent or unqueued)" >&2
    exit 2
    ;;
  esac
done
db_url=$(printf '%s' "$admin_url" | sed -E "s#/[^/?]*(\?|$)#/$db\1#")
psql() { command psql -q -X -v ON_ERROR_STOP=1 "$@"; }
trap 'psql "$admin_url" -c "DROP DATABASE IF EXISTS $db" 2>/dev/null || true' EXIT
psql "$admin_url" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
  -c "CREATE DATABASE $db"

# Ids: time-ordered like ULIDs, so every key is appended at the right of its index.
if has uuid; then
  id_type=UUID
  id() { echo "(lpad(to_hex(i), 12, '0') || substr(md5('$1' || i), 1, 20))::uuid"; }
  endpoint="'00000000-0000-0000-0000-000000000001'::uuid"
  worker="'00000000-0000-0000-0000-000000000002'::uuid"
else
  id_type='TEXT COLLATE "C"'
  id() { echo "'$1_01KBH' || lpad(i::text, 8, '0') || upper(substr(md5(i::text), 1, 9))"; }
  endpoint="'ep_01KBH0000000ABCDEFGHJKMNP'"
  worker="'wrk_01KBH0000000ABCDEFGHJKMNP'"
fi
queued=$(has queue && echo true || echo false)
fill=50 # herald leaves half of each `deliveries` page free for HOT updates (migration 8)
if has fill40; then fill=40; fi
if has fill30; then fill=30; fi
flag() { has "$1" && echo true || echo false; }
keyed=$(flag keyed)
tenantkeyed=$(flag tenantkeyed)
by_event=$(has noevent && echo false || echo true)
pending_index=$(has unqueued && echo false || echo true)

psql "$db_url" <<SQL
CREATE EXTENSION pg_walinspect;
CREATE TABLE events (id $id_type NOT NULL, tenant_id TEXT NOT NULL, event_type TEXT NOT NULL,
  payload TEXT NOT NULL, idempotency_key TEXT, created_at BIGINT NOT NULL, ordering_key TEXT,
  test BOOLEAN NOT NULL DEFAULT false, version TEXT, versions TEXT, channels TEXT, traceparent TEXT);
CREATE TABLE deliveries (id $id_type NOT NULL, event_id $id_type NOT NULL,
  endpoint_id $id_type NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
  next_attempt_at BIGINT, lease_owner $id_type, lease_expires_at BIGINT, created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL, ordering_key TEXT, seq BIGINT, started_at BIGINT, duration_ms BIGINT,
  status_code INTEGER, request_headers TEXT, response_headers TEXT) WITH (fillfactor = $fill);
\if $tenantkeyed
ALTER TABLE events ADD PRIMARY KEY (tenant_id, id);
\else
ALTER TABLE events ADD PRIMARY KEY (id);
CREATE INDEX events_by_tenant ON events (tenant_id, id);
\endif
\if $keyed
ALTER TABLE deliveries ADD PRIMARY KEY (endpoint_id, id);
\else
ALTER TABLE deliveries ADD PRIMARY KEY (id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);
\endif
\if $by_event
CREATE INDEX deliveries_by_event ON deliveries (event_id);
\endif
CREATE TABLE attempts (id $id_type NOT NULL, delivery_id $id_type NOT NULL,
  started_at BIGINT NOT NULL, duration_ms BIGINT NOT NULL, status_code INTEGER,
  response_excerpt TEXT, error TEXT, request_headers TEXT NOT NULL,
  response_headers TEXT NOT NULL, PRIMARY KEY (delivery_id, started_at, id));
\if $queued
CREATE TABLE delivery_queue (delivery_id $id_type PRIMARY KEY, endpoint_id $id_type NOT NULL,
  next_attempt_at BIGINT, ordering_key TEXT, seq BIGINT, lease_owner $id_type,
  lease_expires_at BIGINT) WITH (fillfactor = $fill);
CREATE INDEX delivery_queue_ready ON delivery_queue (endpoint_id, next_attempt_at);
\elif $pending_index
CREATE INDEX deliveries_ready ON deliveries (endpoint_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_order ON deliveries (endpoint_id, ordering_key, seq)
  WHERE state = 'pending' AND ordering_key IS NOT NULL;
\endif
CHECKPOINT;
SQL

if has headers; then
  request_headers="'{\"user-agent\":\"herald/0.1.0\",\"webhook-signature\":\"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\",\"webhook-timestamp\":\"1764820001\"}'"
else
  request_headers="'{\"content-type\":\"application/json\",\"user-agent\":\"herald/0.1.0\",\"webhook-id\":\"' || $(id evt) || '\",\"webhook-signature\":\"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\",\"webhook-timestamp\":\"1764820001\"}'"
fi
batch="FROM generate_series(b * 50, b * 50 + 49) i"
in_batch="IN (SELECT $(id dlv) $batch)"
if [ "$queued" = true ]; then
  queue_insert="INSERT INTO delivery_queue (delivery_id, endpoint_id, next_attempt_at)
    SELECT $(id dlv), $endpoint, 1764820000000 + i $batch;"
  lease="UPDATE delivery_queue SET lease_owner = $worker, lease_expires_at = 1764820060000
    WHERE delivery_id $in_batch;"
  advance="DELETE FROM delivery_queue WHERE delivery_id $in_batch;
    UPDATE deliveries SET state = 'succeeded', attempts = attempts + 1,
      updated_at = 1764820002000 WHERE endpoint_id = $endpoint AND id $in_batch;"
else
  queue_insert=
  lease="UPDATE deliveries SET lease_owner = $worker, lease_expires_at = 1764820060000
    WHERE endpoint_id = $endpoint AND id $in_batch;"
  advance="UPDATE deliveries SET state = 'succeeded', attempts = attempts + 1,
      next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL,
      updated_at = 1764820002000 WHERE endpoint_id = $endpoint AND id $in_batch;"
fi
declare -A phases
phases[accept]="INSERT INTO events (id, tenant_id, event_type, payload, created_at)
    SELECT $(id evt), 'acme', 'invoice.paid',
      '{\"id\":\"inv_' || i || '\",\"amount\":1234,\"currency\":\"eur\",\"customer\":\"cus_1234567890\",\"paid\":true}',
      1764820000000 + i $batch;
  INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, created_at,
      updated_at)
    SELECT $(id dlv), $(id evt), $endpoint, 'pending', 0, 1764820000000 + i, 1764820000000 + i,
      1764820000000 + i $batch;
  $queue_insert"
phases[claim]=$lease
response_headers="'{\"content-length\":\"0\",\"date\":\"Fri, 04 Dec 2026 07:30:00 GMT\"}'"
if has inline; then
  # The attempt's columns go into the delivery's own update.
  [ "$queued" = true ] && unqueue="DELETE FROM delivery_queue WHERE delivery_id $in_batch;" ||
    unqueue=
  [ "$queued" = true ] && unlease= ||
    unlease="next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL,"
  phases[finish]="$unqueue
  UPDATE deliveries SET state = 'succeeded', attempts = attempts + 1, $unlease
      updated_at = 1764820002000, started_at = 1764820001000 + i, duration_ms = 1,
      status_code = 200, request_headers = $request_headers, response_headers = $response_headers
    $batch WHERE endpoint_id = $endpoint AND id = $(id dlv);"
else
  phases[finish]="INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code,
      response_excerpt, error, request_headers, response_headers)
    SELECT $(id att), $(id dlv), 1764820001000 + i, 1, 200, '', NULL, $request_headers,
      $response_headers $batch;
  $advance"
fi

echo "variant $variant: WAL per delivery by kind of record ($n deliveries)"
total=0
for phase in accept claim finish; do
  start=$(psql "$db_url" -Atc "SELECT pg_current_wal_insert_lsn()")
  psql "$db_url" -c "DO \$\$ BEGIN FOR b IN 0..$((n / 50 - 1)) LOOP ${phases[$phase]} COMMIT; END LOOP; END \$\$"
  # Only this database's records (and commits): the server may be serving others meanwhile.
  psql "$db_url" -At -F ' ' -c "
    WITH r AS (
      SELECT resource_manager || '/' || split_part(record_type, ' ', 1) AS kind, record_length
      FROM pg_get_wal_records_info('$start', pg_current_wal_flush_lsn())
      WHERE block_ref LIKE '%/' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '/%'
         OR resource_manager = 'Transaction')
    SELECT format('  %-7s %-20s %6s records %7s B', '$phase', kind, round(count(*)::numeric / $n, 2),
                  round(sum(record_length)::numeric / $n))
    FROM r GROUP BY kind HAVING sum(record_length) >= $n ORDER BY sum(record_length) DESC"
  bytes=$(psql "$db_url" -Atc "
    SELECT round(sum(record_length)::numeric / $n)
    FROM pg_get_wal_records_info('$start', pg_current_wal_flush_lsn())
    WHERE block_ref LIKE '%/' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '/%'
       OR resource_manager = 'Transaction'")
  echo "  $phase: $bytes B"
  total=$((total + bytes))
done
echo "variant $variant: $total B of WAL per delivery"
