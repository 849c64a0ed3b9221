#!/usr/bin/env python3
"""What a change to herald's SQLite tables would do to the writer's time a delivery, before
building it. A model of the fan-out hot path with Python's sqlite3 (the pragmas herald sets):
tables shaped like herald's, 400 events of a 90-byte payload to 50 endpoints accepted in
transactions of 32 events (1,600 deliveries, as the benchmark's HTTP API load makes them),
claimed 250 at a time (the lease), read, and finished 125 at a time (the attempt, the
delivery's new state), each batch bound as one JSON array. Prints each phase's time per
delivery (commits included; `finish` split into the attempt's insert, the delivery's update
and the commit) for one variant:

  today     the tables as herald's migrations leave them
  norowid   `deliveries` a WITHOUT ROWID table (one b-tree less per lookup by id)
  both      `events` too
  leases    the lease kept off the delivery's row, in a table of the deliveries in flight
  cursor    (MIXED only) every delivery in the due index, not only pending ones, so a finish
            leaves the index alone; each endpoint's claims start from a cursor kept at its
            first pending delivery

  scripts/sqlite-model.py today
  EXTRA='PRAGMA synchronous=NORMAL;' scripts/sqlite-model.py today   (another pragma)

MIXED=1 drains as the worker does instead: up to 512 deliveries in flight, claims of an equal
share from each endpoint's oldest pending, finished in the order receivers answer (a random 95
of the oldest 256 in flight), each commit carrying the finishes and, when there is room, a
claim; it also prints the log frames (pages) the drain wrote a delivery, checkpoints off.
KEEP=1 keeps its log (as /tmp/herald-sqlite-model-VARIANT.db.log) for `scripts/sqlite-wal-pages.py`.

Times are the machine's, so compare variants in the same session, alternating.
"""
import json
import os
import random
import shutil
import sqlite3
import sys
import time

variant = sys.argv[1]
path = os.path.join(os.environ.get('TMPDIR', '/tmp'), f'herald-sqlite-model-{variant}.db')
for s in ['', '-wal', '-shm']:
    try: os.unlink(path+s)
    except FileNotFoundError: pass
c = sqlite3.connect(path, isolation_level=None)
mixed = bool(os.environ.get("MIXED"))
c.executescript("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;"
                + ("PRAGMA wal_autocheckpoint=0;" if mixed else "") + os.environ.get("EXTRA",""))
wr = " WITHOUT ROWID" if variant in ('norowid','both') else ""
ewr = " WITHOUT ROWID" if variant in ('both',) else ""
c.executescript(f"""
CREATE TABLE tenants (id TEXT PRIMARY KEY);
CREATE TABLE endpoints (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id));
CREATE TABLE events (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
 event_type TEXT NOT NULL, payload TEXT NOT NULL, idempotency_key TEXT, created_at INTEGER NOT NULL,
 ordering_key TEXT, test BOOLEAN NOT NULL DEFAULT false, version TEXT, versions TEXT, channels TEXT, traceparent TEXT){ewr};
CREATE INDEX events_by_tenant ON events (tenant_id, id);
CREATE TABLE deliveries (id TEXT PRIMARY KEY, event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
 endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE, state TEXT NOT NULL, attempts INTEGER NOT NULL,
 next_attempt_at INTEGER, lease_owner TEXT, lease_expires_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
 ordering_key TEXT, seq BIGINT){wr};
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);
CREATE TABLE attempts (id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
 started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL, status_code INTEGER, response_excerpt TEXT, error TEXT,
 request_headers TEXT NOT NULL DEFAULT '{{}}', response_headers TEXT NOT NULL DEFAULT '{{}}');
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, started_at);
CREATE INDEX deliveries_ready ON deliveries (endpoint_id, next_attempt_at){"" if variant == "cursor" else " WHERE state = 'pending'"};
CREATE TABLE cursors (endpoint_id TEXT PRIMARY KEY, at INTEGER NOT NULL, row INTEGER NOT NULL);
CREATE INDEX deliveries_in_order ON deliveries (endpoint_id, ordering_key, seq) WHERE state = 'pending' AND ordering_key IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries (endpoint_id, id) WHERE state = 'dead';
CREATE TABLE leases (delivery_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
""")
c.execute("insert into tenants values ('bench')")
E = 50
eps = [f"ep_2x{i:026d}" for i in range(E)]
for e in eps: c.execute("insert into endpoints values (?, 'bench')", (e,))
N_EV = 400
counter = [0]
def nid(p):
    counter[0] += 1
    return f"{p}_{int(time.time()*1000):012x}{counter[0]:08x}{random.getrandbits(40):010x}"
payload = json.dumps({"username":"rick","monthly_fee":9.99,"start_date":"2026-11-22T08:00:00Z"})
t = {}
def timed(name, f):
    s = time.perf_counter(); f(); t[name] = t.get(name, 0) + time.perf_counter() - s
dl = []
for b in range(0, N_EV, 32):
    evs = [(nid('evt'), 'bench', 'new-subscription', payload, None, 1000) for _ in range(32)]
    # Each batch due at its own millisecond, as accepts over time are.
    dls = [(nid('dlv'), ev[0], ep, 1000, None, None, 'pending', 1000 + b) for ev in evs for ep in eps]
    dl += [(d[0], d[2]) for d in dls]
    def acc():
        c.execute("BEGIN")
        c.execute("INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) SELECT v.value->>0, v.value->>1, v.value->>2, v.value->>3, v.value->>4, CAST(v.value->>5 AS BIGINT) FROM json_each(?) AS v", (json.dumps(evs),))
        c.execute("INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, ordering_key, seq, created_at, updated_at) SELECT v.value->>0, v.value->>1, v.value->>2, v.value->>6, 0, CAST(v.value->>7 AS BIGINT), v.value->>4, CAST(v.value->>5 AS BIGINT), CAST(v.value->>3 AS BIGINT), CAST(v.value->>3 AS BIGINT) FROM json_each(?) AS v", (json.dumps(dls),))
        c.execute("COMMIT")
    timed('accept', acc)
ND = len(dl)
leases = variant == 'leases'
cursor = variant == 'cursor'
c.executemany("INSERT INTO cursors VALUES (?, 0, 0)", [(e,) for e in eps])
unleased = "NOT EXISTS (SELECT 1 FROM leases l WHERE l.delivery_id = r.id)" if leases else "r.lease_owner IS NULL"


def wal_frames():
    try:
        return os.path.getsize(path + '-wal') // (4096 + 24)
    except FileNotFoundError:
        return 0


def drain_mixed():
    """The drain as the worker's claims and the receivers' answers interleave (MIXED=1)."""
    in_flight, done, before = [], 0, wal_frames()
    while done < ND:
        c.execute("BEGIN")
        part = random.sample(in_flight[:256], min(95, len(in_flight)))
        if part:
            gone = set(part)
            in_flight[:] = [d for d in in_flight if d not in gone]
            atts = [(nid('att'), d, 1001, 1, 200, '', None, '{"user-agent":"herald/0.1.0"}', '{}') for d in part]
            timed('fin_attempts', lambda: c.execute("INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, response_excerpt, error, request_headers, response_headers) SELECT v.value->>0, v.value->>1, CAST(v.value->>2 AS BIGINT), CAST(v.value->>3 AS BIGINT), CAST(v.value->>4 AS INTEGER), v.value->>5, v.value->>6, v.value->>7, v.value->>8 FROM json_each(?) AS v", (json.dumps(atts),)))
            if leases:
                timed('fin_advance', lambda: (c.execute("DELETE FROM leases WHERE delivery_id IN (SELECT t.value FROM json_each(?) AS t) AND owner = 'w/1'", (json.dumps(part),)),
                    c.execute("UPDATE deliveries SET state = 'succeeded', attempts = attempts + 1, next_attempt_at = NULL, updated_at = 1002 WHERE id IN (SELECT t.value FROM json_each(?) AS t) AND state = 'pending' RETURNING id, endpoint_id, ordering_key", (json.dumps(part),)).fetchall()))
            elif cursor:
                # next_attempt_at kept: the due index's entry does not move.
                timed('fin_advance', lambda: c.execute("UPDATE deliveries SET state = 'succeeded', attempts = attempts + 1, lease_owner = NULL, lease_expires_at = NULL, updated_at = 1002 WHERE id IN (SELECT t.value FROM json_each(?) AS t) AND lease_owner = 'w/1' AND state = 'pending' RETURNING id, endpoint_id, ordering_key", (json.dumps(part),)).fetchall())
            else:
                timed('fin_advance', lambda: c.execute("UPDATE deliveries SET state = 'succeeded', attempts = attempts + 1, next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = 1002 WHERE id IN (SELECT t.value FROM json_each(?) AS t) AND lease_owner = 'w/1' AND state = 'pending' RETURNING id, endpoint_id, ordering_key", (json.dumps(part),)).fetchall())
            done += len(part)
        room = 512 - len(in_flight)
        if room >= 128:
            share = max(1, min(256, room) // E)
            def claim():
                if cursor:
                    # From each endpoint's cursor; then each cursor moves to its first pending.
                    rows = c.execute("SELECT c.id FROM json_each(?) AS v JOIN cursors k ON k.endpoint_id = v.value JOIN deliveries c ON c.rowid IN (SELECT r.rowid FROM deliveries r WHERE r.endpoint_id = k.endpoint_id AND (r.next_attempt_at, r.rowid) >= (k.at, k.row) AND r.next_attempt_at <= 2000 AND r.state = 'pending' AND r.lease_owner IS NULL ORDER BY r.next_attempt_at, r.rowid LIMIT ?)", (json.dumps(eps), share)).fetchall()
                    c.execute("UPDATE cursors AS k SET (at, row) = (SELECT * FROM (SELECT r.next_attempt_at, r.rowid FROM deliveries r WHERE r.endpoint_id = k.endpoint_id AND (r.next_attempt_at, r.rowid) >= (k.at, k.row) AND r.state = 'pending' ORDER BY r.next_attempt_at, r.rowid LIMIT 1) UNION ALL SELECT k.at, k.row LIMIT 1)")
                else:
                    rows = c.execute(f"SELECT c.id FROM json_each(?) AS v JOIN deliveries c ON {rcol} IN (SELECT {rr} FROM deliveries r WHERE r.endpoint_id = v.value->>0 AND r.state = 'pending' AND r.next_attempt_at <= 2000 AND {unleased} ORDER BY r.next_attempt_at LIMIT ?)", (json.dumps([[e, share] for e in eps]), share)).fetchall()
                ids = [r[0] for r in rows]
                if leases:
                    c.execute("INSERT INTO leases SELECT t.value, 'w/1', 99999 FROM json_each(?) AS t", (json.dumps(ids),))
                else:
                    c.execute("UPDATE deliveries SET lease_owner = 'w/1', lease_expires_at = 99999, updated_at = 1001 WHERE id IN (SELECT t.value FROM json_each(?) AS t)", (json.dumps(ids),))
                in_flight.extend(ids)
            timed('claim', claim)
        timed('commit', lambda: c.execute("COMMIT"))
    return (wal_frames() - before) / ND


# claims of 250, read, finishes of 125
rcol = "c.rowid" if not wr else "c.id"
rr = "r.rowid" if not wr else "r.id"
frames = drain_mixed() if mixed else None
for b in range(0, 0 if mixed else ND, 250):
    chunk = dl[b:b+250]
    ids = [d[0] for d in chunk]
    wanted = [[e, 5] for e in eps]
    def claim():
        c.execute("BEGIN")
        c.execute(f"SELECT c.id, c.endpoint_id, c.ordering_key, c.seq, c.next_attempt_at FROM json_each(?) AS v JOIN deliveries c ON {rcol} IN (SELECT {rr} FROM deliveries r WHERE r.endpoint_id = v.value->>0 AND r.state = 'pending' AND r.next_attempt_at <= 2000 AND r.lease_owner IS NULL ORDER BY r.next_attempt_at LIMIT 5)", (json.dumps(wanted),)).fetchall()
        c.execute("UPDATE deliveries SET lease_owner = 'w/1', lease_expires_at = 99999, updated_at = 1001 WHERE id IN (SELECT t.value FROM json_each(?) AS t)", (json.dumps(ids),))
        c.execute("COMMIT")
    timed('claim', claim)
    def read():
        c.execute("SELECT d.id AS delivery_id, d.attempts, e.id AS event_id, e.event_type, e.payload, d.endpoint_id, d.ordering_key, e.version, e.versions, e.traceparent FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id IN (SELECT t.value FROM json_each(?) AS t)", (json.dumps(ids),)).fetchall()
    timed('read', read)
    for h in range(0, 250, 125):
        part = ids[h:h+125]
        atts = [(nid('att'), d, 1001, 1, 200, '', None, '{"user-agent":"herald/0.1.0","webhook-signature":"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}', '{"content-length":"0","date":"Fri, 04 Dec 2026 16:00:00 GMT"}') for d in part]
        adv = [(d, 'succeeded', None, 1002, 'w/1') for d in part]
        c.execute("BEGIN")
        def fin_a():
            c.execute("INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, response_excerpt, error, request_headers, response_headers) SELECT v.value->>0, v.value->>1, CAST(v.value->>2 AS BIGINT), CAST(v.value->>3 AS BIGINT), CAST(v.value->>4 AS INTEGER), v.value->>5, v.value->>6, v.value->>7, v.value->>8 FROM json_each(?) AS v", (json.dumps(atts),))
        def fin_b():
            c.execute("UPDATE deliveries SET state = v.value->>1, attempts = attempts + 1, next_attempt_at = CAST(v.value->>2 AS BIGINT), lease_owner = NULL, lease_expires_at = NULL, updated_at = CAST(v.value->>3 AS BIGINT) FROM json_each(?) AS v WHERE deliveries.id = v.value->>0 AND deliveries.lease_owner = v.value->>4 AND deliveries.state = 'pending' RETURNING id, endpoint_id, ordering_key", (json.dumps(adv),)).fetchall()
        timed('fin_attempts', fin_a)
        timed('fin_advance', fin_b)
        timed('fin_commit', lambda: c.execute("COMMIT"))
left = c.execute("select count(*) from deliveries where state='pending'").fetchone()[0]
tot = sum(t.values())
print(variant, ND, 'left', left, ' '.join(f"{k} {v/ND*1e6:.2f}us" for k, v in t.items()), f"total {tot/ND*1e6:.2f}us", 'pages', c.execute('pragma page_count').fetchone()[0],
      '' if frames is None else f"drain log frames a delivery {frames:.2f}")
if os.environ.get("KEEP"):
    # Copied while the connection is open: closing it checkpoints the log away.
    shutil.copy(path + '-wal', path + '.log')
for suffix in ['', '-wal', '-shm']:
    try:
        os.unlink(path + suffix)
    except FileNotFoundError:
        pass
