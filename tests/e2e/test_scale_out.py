"""Scale-out: two herald processes share one PostgreSQL database and one workload.

Events are posted alternately to both; both workers claim from the same table with
FOR UPDATE SKIP LOCKED. Every delivery must arrive, and none twice: a duplicate would mean a
delivery was in flight from both processes at once (no process is killed here, so at-least-once
re-sends cannot explain one). The chart's counts (rows per endpoint, hour and worker) add up
both processes' attempts, each once.
"""

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from test_delivery import Receiver, call, fresh_postgres_database, start_herald
from test_crash import post_event

EVENTS = 300


@pytest.fixture
def postgres_database():
    yield from fresh_postgres_database()


def test_two_processes_share_the_work_without_sending_twice(postgres_database):
    receiver = Receiver(delay=0.01)
    first, first_base = start_herald(postgres_database)
    second, second_base = start_herald(postgres_database)
    try:
        call(first_base, "POST", "/api/v1/tenants", {"id": "acme"})
        call(first_base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})
        sent = [post_event(first_base if n % 2 else second_base) for n in range(EVENTS)]

        arrived = {}
        deadline = time.monotonic() + 60
        while set(sent) - set(arrived) and time.monotonic() < deadline:
            try:
                headers, _ = receiver.next(timeout=1)
            except Exception:
                continue
            arrived[headers["webhook-id"]] = arrived.get(headers["webhook-id"], 0) + 1
        time.sleep(1)  # anything sent twice would arrive within this
        while not receiver.requests.empty():
            webhook_id = receiver.requests.get()[0]["webhook-id"]
            arrived[webhook_id] = arrived.get(webhook_id, 0) + 1

        twice = {event: count for event, count in arrived.items() if count > 1}
        lost = set(sent) - set(arrived)
        print(f"\n2 processes, {EVENTS} events: {len(arrived)} arrived, {len(lost)} lost, "
              f"{len(twice)} sent twice")
        assert not lost
        assert not twice

        workers = subprocess.run(
            ["psql", postgres_database, "-Atc", "SELECT count(DISTINCT worker) FROM attempt_hours"],
            check=True, capture_output=True, text=True, timeout=30).stdout.strip()
        assert workers == "2", f"both processes made attempts: {workers} workers counted"
        for base in (first_base, second_base):
            status, _, stats = call(base, "GET", "/api/v1/tenants/acme/stats?hours=2")
            assert status == 200, stats
            succeeded = sum(hour["succeeded"] for hour in stats["hours"])
            assert succeeded == EVENTS, f"the chart counts {succeeded} successes, not {EVENTS}"
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(timeout=15)
        receiver.close()


ENDPOINTS = 20
FANNED = 100


def test_two_processes_both_deliver_when_many_endpoints_are_busy(postgres_database):
    """Delivery scales out: with work for many endpoints, each process's worker sends a part
    of it. A design where the first worker to claim an endpoint kept it made every one of
    114,580 attempts by one worker, and a benchmark of two processes sharing one machine's
    cores could not tell; this counts each worker's attempts."""
    receiver = Receiver()
    first, first_base = start_herald(postgres_database)
    second, second_base = start_herald(postgres_database)
    try:
        call(first_base, "POST", "/api/v1/tenants", {"id": "acme"})
        for n in range(ENDPOINTS):
            status, _, body = call(first_base, "POST", "/api/v1/tenants/acme/endpoints",
                                   {"url": f"{receiver.url}?endpoint={n}"})
            assert status == 201, body
        with ThreadPoolExecutor(4) as pool:
            sent = list(pool.map(
                lambda n: post_event(first_base if n % 2 else second_base), range(FANNED)))

        expected = len(sent) * ENDPOINTS
        per_worker = []
        deadline = time.monotonic() + 60
        while sum(per_worker) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            counts = subprocess.run(
                ["psql", postgres_database, "-Atc",
                 "SELECT sum(succeeded) FROM attempt_hours GROUP BY worker ORDER BY 1"],
                check=True, capture_output=True, text=True, timeout=30).stdout.split()
            per_worker = [int(count) for count in counts]
        print(f"\n2 processes, {ENDPOINTS} endpoints, {expected} deliveries: "
              f"attempts by worker {per_worker}")
        assert sum(per_worker) == expected, per_worker
        assert len(per_worker) == 2 and min(per_worker) >= expected // 10, (
            f"one worker made nearly every attempt: {per_worker}")
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(timeout=15)
        receiver.close()
