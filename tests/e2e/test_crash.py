"""Crash safety: SIGKILL a real herald under load, restart it, and count what arrives.

Every event whose POST returned 202 before the kill must reach the receiver afterwards (counted by
webhook-id): none lost. Delivery is at-least-once, so an attempt in flight at the kill may be sent
again; duplicates are counted and reported, not failed.
"""

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

from test_delivery import Receiver, call, start_herald
from test_delivery import database_url  # noqa: F401  (pytest fixture, both backends)

PAYLOAD = '{"username": "rick", "monthly_fee": 9.99, "start_date": "2026-11-22T08:00:00Z"}'
EVENTS = 400


def post_event(base):
    body = ('{"event_type": "new-subscription", "payload": ' + PAYLOAD + "}").encode()
    request = urllib.request.Request(f"{base}/api/v1/tenants/acme/events", data=body, method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("authorization", "Bearer e2e-admin-token")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["id"]


def keep_posting(base, accepted, stop, limit):
    """Posts events into `accepted` until `limit`, `stop`, or the server stops answering."""
    while not stop.is_set() and len(accepted) < limit:
        try:
            accepted.append(post_event(base))
        except (urllib.error.URLError, ConnectionError, OSError):
            return  # the server is gone


def arrivals(receiver, accepted, seconds=60):
    """webhook-id → how many times it arrived, once every accepted id has (or time is up), and
    the seconds until the last accepted id arrived."""
    arrived = {}
    started = time.monotonic()
    deadline = started + seconds
    while set(accepted) - set(arrived) and time.monotonic() < deadline:
        try:
            headers, _ = receiver.next(timeout=1)
        except Exception:
            continue
        arrived[headers["webhook-id"]] = arrived.get(headers["webhook-id"], 0) + 1
    took = time.monotonic() - started
    # Drain anything still queued at the receiver, to count duplicates fully.
    while not receiver.requests.empty():
        webhook_id = receiver.requests.get()[0]["webhook-id"]
        arrived[webhook_id] = arrived.get(webhook_id, 0) + 1
    return arrived, took


def test_sigkill_mid_stream_loses_nothing(database_url):  # noqa: F811
    # A slow receiver, so that at the kill some deliveries are queued and some are in flight.
    # The default lease (60 s): claims of the killed process are taken back at once, not when
    # their lease runs out.
    receiver = Receiver(delay=0.1)
    process, base = start_herald(database_url)
    try:
        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})

        accepted = []
        stop = threading.Event()
        sender = threading.Thread(target=keep_posting, args=(base, accepted, stop, EVENTS))
        sender.start()
        while len(accepted) < EVENTS // 2:
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        stop.set()
        sender.join(timeout=10)
        killed_after = len(accepted)
        arrived_before = receiver.requests.qsize()

        process, base = start_herald(database_url)
        arrived, took = arrivals(receiver, accepted)

        lost = set(accepted) - set(arrived)
        duplicates = sum(count - 1 for count in arrived.values())
        print(f"\n{database_url.split(':')[0]}: {killed_after} accepted before SIGKILL, "
              f"{arrived_before} of them delivered by then; after restart "
              f"{len(set(accepted) & set(arrived))} arrived in all, {len(lost)} lost, "
              f"{duplicates} duplicate deliveries; the last arrived {took:.1f} s after the restart")
        assert not lost, f"lost {len(lost)} accepted events, e.g. {sorted(lost)[:3]}"
        assert took <= 10, f"the last accepted event arrived {took:.1f} s after the restart"
    finally:
        process.terminate()
        process.wait(timeout=15)
        receiver.close()
