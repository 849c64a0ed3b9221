"""What an operator relies on: probes, /metrics after a known workload, and SIGTERM in the
middle of a workload losing nothing."""

import os
import signal
import threading
import time
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from test_crash import arrivals, keep_posting, post_event
from test_delivery import TOKEN, Receiver, call, start_herald
from test_delivery import database_url  # noqa: F401  (pytest fixture, both backends)


def get_text(base, path, token=None):
    request = urllib.request.Request(base + path)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("content-type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type"), error.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} from the OpenMetrics text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_probes_and_metrics_after_a_known_workload(database_url):  # noqa: F811
    receiver = Receiver(statuses=[500])  # the first attempt fails, everything else succeeds
    process, base = start_herald(database_url)
    try:
        assert get_text(base, "/health")[0] == 200
        assert get_text(base, "/ready")[0] == 200
        assert get_text(base, "/metrics")[0] == 401, "metrics name tenants: admin only"

        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        endpoint = call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})[2]
        accepted = [post_event(base) for _ in range(3)]
        # One repeated idempotency key is not a new event.
        body = {"event_type": "new-subscription", "idempotency_key": "once",
                "payload": {"username": "r", "monthly_fee": 1, "start_date": "2026-11-22T08:00:00Z"}}
        call(base, "POST", "/api/v1/tenants/acme/events", body)
        call(base, "POST", "/api/v1/tenants/acme/events", body)

        # Four deliveries, one retried 5 s (±20%) later: five requests in all.
        for _ in range(5):
            receiver.next(timeout=15)
        deadline = time.monotonic() + 10
        while True:
            status, content_type, text = get_text(base, "/metrics", TOKEN)
            assert status == 200
            assert content_type.startswith("application/openmetrics-text")
            figures = samples(text)
            if figures[("herald_queue_pending", frozenset())] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)

        def value(name, **labels):
            return figures[(name, frozenset(labels.items()))]

        assert value("herald_events_accepted_total") == 4
        assert value("herald_attempts_total", outcome="succeeded") == 4
        assert value("herald_attempts_total", outcome="retry") == 1
        assert value("herald_attempt_duration_seconds_count") == 5
        assert value("herald_queue_pending") == 0
        assert value("herald_queue_due") == 0
        assert value("herald_queue_oldest_due_age_seconds") == 0
        failing = [k for k in figures if k[0] == "herald_endpoint_failing_seconds"]
        assert failing == [], "a success ends the endpoint's streak"
        assert endpoint["id"] and len(accepted) == 3
    finally:
        process.terminate()
        process.wait(timeout=15)
        receiver.close()


def test_sigterm_mid_workload_loses_nothing(database_url):  # noqa: F811
    receiver = Receiver(delay=0.05)
    process, base = start_herald(database_url, lease_seconds=25)
    try:
        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})
        accepted = []
        stop = threading.Event()
        sender = threading.Thread(target=keep_posting, args=(base, accepted, stop, 300))
        sender.start()
        while len(accepted) < 150:
            time.sleep(0.005)
        signalled = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)
        code = process.wait(timeout=30)
        stopped_in = time.monotonic() - signalled
        stop.set()
        sender.join(timeout=10)
        assert code == 0, f"herald exited with {code} on SIGTERM"
        # The worker's grace period is 10 s; in-flight requests take 50 ms here.
        assert stopped_in < 12, f"took {stopped_in:.1f}s to stop"

        process, base = start_herald(database_url)
        arrived, _ = arrivals(receiver, accepted)
        lost = set(accepted) - set(arrived)
        duplicates = sum(count - 1 for count in arrived.values())
        print(f"\n{database_url.split(':')[0]}: SIGTERM after {len(accepted)} accepted, "
              f"stopped in {stopped_in:.2f}s; after restart {len(lost)} lost, "
              f"{duplicates} duplicate deliveries")
        assert not lost, f"lost {len(lost)} accepted events"
        # Nothing was cut off: every request sent before the stop was answered and recorded.
        assert duplicates == 0, f"{duplicates} sent twice across a graceful stop"
    finally:
        process.terminate()
        process.wait(timeout=15)
        receiver.close()


def test_sigterm_with_slow_requests_sends_nothing_twice(database_url):  # noqa: F811
    # Each request takes 2 s: at the SIGTERM some are in flight and more are due. Those in
    # flight finish within the grace and are recorded; no new one starts; the rest wait for
    # the restart. Counted at the receiver, and against the attempts herald recorded.
    receiver = Receiver(delay=2)
    process, base = start_herald(database_url)
    try:
        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})
        accepted = [post_event(base) for _ in range(40)]
        time.sleep(1)  # the first requests are in flight
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        sent_before = receiver.requests.qsize()

        process, base = start_herald(database_url)
        arrived, took = arrivals(receiver, accepted, seconds=60)
        lost = set(accepted) - set(arrived)
        duplicates = sum(count - 1 for count in arrived.values())
        # The receiver counts a request before it answers; herald records it after.
        deadline = time.monotonic() + 10
        while True:
            _, _, page = call(base, "GET", "/api/v1/tenants/acme/deliveries?limit=100")
            deliveries = page["data"]
            settled = all(d["state"] != "pending" for d in deliveries)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        recorded = sum(d["attempt_count"] for d in deliveries)
        received = sum(arrived.values())
        print(f"\n{database_url.split(':')[0]}: {sent_before} requests answered before the "
              f"stop; after restart all {len(accepted) - len(lost)} arrived in {took:.1f} s, "
              f"{duplicates} twice; {received} requests, {recorded} attempts recorded")
        assert not lost, f"lost {len(lost)} accepted events"
        assert duplicates == 0, f"{duplicates} sent twice across a graceful stop"
        assert recorded == received, f"{received} requests but {recorded} attempts recorded"
    finally:
        process.terminate()
        process.wait(timeout=15)
        receiver.close()


def test_a_stop_signal_the_moment_herald_starts_is_a_clean_exit(tmp_path):
    """A script that starts herald and stops it at once (a failed deploy step, a test harness)
    sees exit 0, not a death by the signal: the handlers are in place before the port is
    printed, and a signal that comes while the store opens stops herald once it has."""
    for number, sent in enumerate([signal.SIGTERM, signal.SIGINT] * 3):
        process, _ = start_herald(f"sqlite://{tmp_path}/herald-{number}.db")
        process.send_signal(sent)
        code = process.wait(timeout=30)
        assert code == 0, f"{sent.name} right after the first line: herald exited with {code}"
