"""Scale-out: two herald processes share one PostgreSQL database and one workload.

Events are posted alternately to both. Each endpoint is served by one of the workers (the one
it hashes highest with), and both workers claim from the same tables with FOR UPDATE SKIP
LOCKED. Every delivery must arrive, and none twice: a duplicate would mean a delivery was in
flight from both processes at once (no process is killed here, so at-least-once re-sends
cannot explain one). The chart's counts (rows per endpoint, hour and worker) add up the
attempts, each once, whichever process is asked. With many endpoints, both workers deliver.
"""

import queue
import signal
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


def psql(database, sql, check=True):
    done = subprocess.run(["psql", database, "-Atc", sql], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0 or not check, done.stderr
    return done.stdout.split()


def both_workers_registered(database):
    """Waits until both processes' workers are registered: until then the first serves every
    endpoint, and would hand some over to the second mid-test."""
    deadline = time.monotonic() + 10
    while len(psql(database, "SELECT id FROM workers", check=False)) < 2:
        assert time.monotonic() < deadline, "both workers register"
        time.sleep(0.1)


def test_two_processes_on_one_endpoint_send_nothing_twice(postgres_database):
    receiver = Receiver(delay=0.01)
    first, first_base = start_herald(postgres_database)
    second, second_base = start_herald(postgres_database)
    try:
        both_workers_registered(postgres_database)
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

        (workers,) = psql(postgres_database, "SELECT count(DISTINCT worker) FROM attempt_hours")
        assert workers == "1", f"one endpoint is served by one worker: {workers} workers counted"
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
    of it (each serves the endpoints that hash highest with it: about half, rarely fewer than
    a tenth). A design where the first worker to claim an endpoint kept it made every one of
    114,580 attempts by one worker, and a benchmark of two processes sharing one machine's
    cores could not tell; this counts each worker's attempts."""
    receiver = Receiver()
    first, first_base = start_herald(postgres_database)
    second, second_base = start_herald(postgres_database)
    try:
        both_workers_registered(postgres_database)
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
            per_worker = [int(count) for count in psql(
                postgres_database,
                "SELECT sum(succeeded) FROM attempt_hours GROUP BY worker ORDER BY 1")]
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


def test_a_stopping_process_hands_its_endpoints_over_at_once(postgres_database):
    """A process told to stop finishes its requests in flight (up to 10 s) but serves its
    endpoints no more: the other process takes them over as it begins to stop, not when it is
    gone."""
    slow = Receiver(delay=8)
    fast = Receiver()
    processes = dict([start_herald(postgres_database), start_herald(postgres_database)])
    try:
        both_workers_registered(postgres_database)
        base = next(iter(processes.values()))
        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        _, _, hanging = call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": slow.url})
        for n in range(ENDPOINTS):
            call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": f"{fast.url}?n={n}"})
        # The process serving the slow endpoint is the one that will stop.
        (owner,) = psql(postgres_database,
                        "SELECT w.id FROM workers w "
                        f"ORDER BY md5('{hanging['id']}' || w.id) DESC LIMIT 1")
        stopping = next(p for p in processes if owner.startswith(f"herald-{p.pid}-"))
        staying = processes[next(p for p in processes if p is not stopping)]

        post_event(staying)
        for _ in range(ENDPOINTS):
            fast.next(timeout=10)
        deadline = time.monotonic() + 5
        while not psql(postgres_database,
                       "SELECT id FROM deliveries WHERE lease_owner IS NOT NULL"):
            assert time.monotonic() < deadline, "the slow endpoint's request is in flight"
            time.sleep(0.05)

        stopping.terminate()
        time.sleep(0.5)  # the signal is handled
        assert stopping.poll() is None, "still finishing its request in flight"
        stopped = time.monotonic()
        later = [post_event(staying) for _ in range(5)]
        arrived = 0
        while arrived < len(later) * ENDPOINTS:
            headers, _ = fast.next(timeout=max(0.1, stopped + 15 - time.monotonic()))
            arrived += headers["webhook-id"] in later
        took = time.monotonic() - stopped
        print(f"\nevents sent while the other process stopped arrived in {took:.2f} s")
        assert took < 3, f"{took:.1f} s: the stopping process kept its endpoints"
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
        slow.close()
        fast.close()


def test_a_stalled_process_hands_its_endpoints_over(postgres_database):
    """A process that is alive but makes no progress (here stopped with SIGSTOP: its
    connections stay open, so its session lock still says it lives) keeps its endpoints only
    until its heartbeat is 5 s old; then the other process serves them."""
    receiver = Receiver()
    processes = dict([start_herald(postgres_database), start_herald(postgres_database)])
    stalled, staying = processes
    try:
        both_workers_registered(postgres_database)
        base = processes[staying]
        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        for n in range(ENDPOINTS):
            call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": f"{receiver.url}?n={n}"})
        post_event(base)
        for _ in range(ENDPOINTS):
            receiver.next(timeout=10)

        stalled.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        later = [post_event(base) for _ in range(5)]
        arrived = 0
        while arrived < len(later) * ENDPOINTS:
            try:
                headers, _ = receiver.next(timeout=max(0.1, stopped + 20 - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{arrived} of {len(later) * ENDPOINTS} deliveries in 20 s: "
                            "the stalled process kept its endpoints")
            arrived += headers["webhook-id"] in later
        took = time.monotonic() - stopped
        print(f"\nevents sent while the other process was stopped arrived in {took:.2f} s")
        assert took < 8, f"{took:.1f} s: the stalled process kept its endpoints"
    finally:
        stalled.send_signal(signal.SIGCONT)
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
        receiver.close()
