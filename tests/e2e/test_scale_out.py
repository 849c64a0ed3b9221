"""Scale-out: two herald processes share one PostgreSQL database and one workload.

Events are posted alternately to both; both workers claim from the same table with
FOR UPDATE SKIP LOCKED, and the endpoint stays with the worker serving it (a second after each
claim) so the two do not take turns at it. Every delivery must arrive, and none twice: a
duplicate would mean a delivery was in flight from both processes at once (no process is killed
here, so at-least-once re-sends cannot explain one). Then the process serving the endpoint stops:
it lets go of the endpoint, and the other serves the next events at once. The chart's counts
(rows per endpoint, hour and worker) add up both processes' attempts, each once.
"""

import subprocess
import time

import pytest

from test_delivery import Receiver, call, fresh_postgres_database, start_herald
from test_crash import arrivals, post_event

EVENTS = 300
LATER = 50


@pytest.fixture
def postgres_database():
    yield from fresh_postgres_database()


def workers(database_url):
    """The workers that made attempts (named `herald-<pid>-…`)."""
    out = subprocess.run(
        ["psql", database_url, "-Atc", "SELECT DISTINCT worker FROM attempt_hours"],
        check=True, capture_output=True, text=True, timeout=30).stdout.split()
    return out


def test_two_processes_share_the_work_without_sending_twice(postgres_database):
    receiver = Receiver(delay=0.01)
    first, first_base = start_herald(postgres_database)
    second, second_base = start_herald(postgres_database)
    processes = {first.pid: (first, first_base), second.pid: (second, second_base)}
    try:
        call(first_base, "POST", "/api/v1/tenants", {"id": "acme"})
        call(first_base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})
        sent = [post_event(first_base if n % 2 else second_base) for n in range(EVENTS)]
        arrived, _ = arrivals(receiver, sent)

        # The process that served the endpoint stops; the other takes it over at once, not when
        # the endpoint's stay with the first would have ended.
        serving = int(workers(postgres_database)[0].split("-")[1])
        stopping, _ = processes.pop(serving)
        stopping.terminate()
        stopping.wait(timeout=15)
        survivor, survivor_base = next(iter(processes.values()))
        started = time.monotonic()
        later = [post_event(survivor_base) for _ in range(LATER)]
        arrived_later, _ = arrivals(receiver, later, 30)
        took = time.monotonic() - started
        time.sleep(1)  # anything sent twice would arrive within this
        late, _ = arrivals(receiver, [], 0)  # what is queued at the receiver
        for counts in (arrived_later, late):
            for webhook_id, n in counts.items():
                arrived[webhook_id] = arrived.get(webhook_id, 0) + n

        twice = {event: count for event, count in arrived.items() if count > 1}
        lost = set(sent + later) - set(arrived)
        print(f"\n2 processes, {EVENTS} events, then {LATER} to the survivor in {took:.2f} s: "
              f"{len(arrived)} arrived, {len(lost)} lost, {len(twice)} sent twice")
        assert not lost
        assert not twice
        assert took < 5, f"the survivor took {took:.1f} s to serve {LATER} events"

        counted = workers(postgres_database)
        assert len(counted) == 2, f"both processes made attempts: {counted}"
        status, _, stats = call(survivor_base, "GET", "/api/v1/tenants/acme/stats?hours=2")
        assert status == 200, stats
        succeeded = sum(hour["succeeded"] for hour in stats["hours"])
        total = EVENTS + LATER
        assert succeeded == total, f"the chart counts {succeeded} successes, not {total}"
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
        receiver.close()
