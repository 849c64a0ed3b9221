#!/usr/bin/env python3
"""What one tenant with many endpoints costs the others (docs/sqlite.md, "A tenant with 10,000
endpoints"): a fresh `herald serve` on embedded SQLite, tenant `wide` with N disabled endpoints
(each event still writes a delivery for each, as skipped), tenant `small` with one. Times
`small`'s accepts alone, then while `wide` posts ten events one after another, and `wide`'s.

    scripts/wide-tenant.py target/release/herald 1000 [10000 ...]

Everything listens on 127.0.0.1 and stops at the end."""

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOKEN = "wide-token"
PORT = 18140


def call(conn, method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status} {data[:200]!r}")
    return data


def post_event(conn, tenant):
    started = time.perf_counter()
    call(conn, "POST", f"/api/v1/tenants/{tenant}/events",
         {"event_type": "new-subscription",
          "payload": {"username": "rick", "monthly_fee": 9.99, "start_date": "2026-11-22T08:00:00Z"}})
    return (time.perf_counter() - started) * 1000


def summary(times):
    times = sorted(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms ({len(times)})"


def run(herald, endpoints):
    with tempfile.TemporaryDirectory() as dir:
        env = dict(os.environ, HERALD_ADMIN_TOKEN=TOKEN, HERALD_TENANTS__MAX_ENDPOINTS="0")
        server = subprocess.Popen(
            [herald, "serve", "--database-url", f"sqlite://{dir}/herald.db",
             "--addr", f"127.0.0.1:{PORT}", "--allow-target", "127.0.0.0/8"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
                    conn.request("GET", "/ready")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise SystemExit("herald did not start")
                time.sleep(0.1)
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            for tenant, count in (("wide", endpoints), ("small", 1)):
                call(conn, "POST", "/api/v1/tenants", {"id": tenant})
                for n in range(count):
                    call(conn, "POST", f"/api/v1/tenants/{tenant}/endpoints",
                         {"url": f"http://127.0.0.1:9/{n}", "enabled": False})
            alone = [post_event(conn, "small") for _ in range(200)]
            wide_times, beside = [], []
            done = threading.Event()

            def wide():
                c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
                for _ in range(10):
                    wide_times.append(post_event(c, "wide"))
                done.set()

            thread = threading.Thread(target=wide)
            thread.start()
            while not done.is_set():
                beside.append(post_event(conn, "small"))
            thread.join()
            print(f"{endpoints} endpoints: wide's events {summary(wide_times)}; "
                  f"small's accepts alone {summary(alone)}, beside wide's {summary(beside)}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    for n in sys.argv[2:] or ["1000"]:
        run(sys.argv[1], int(n))
