"""A PostgreSQL outage: herald answers fast while the database is gone, loses nothing it accepted,
and resumes by itself when it returns.

The test makes its own throwaway cluster (initdb on a free port, removed afterwards) and stops and
starts that one; the shared server is never touched.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

from test_delivery import TOKEN, Receiver, call, start_herald
from test_crash import PAYLOAD, arrivals

PG_BIN = "/usr/lib/postgresql/15/bin"


class Cluster:
    """A PostgreSQL cluster of this test's own, run as the `postgres` user."""

    def __init__(self):
        if not os.path.exists(f"{PG_BIN}/initdb"):
            if os.environ.get("CI") == "true":
                raise AssertionError(f"{PG_BIN}/initdb is missing")
            pytest.skip("no PostgreSQL server binaries")
        self.dir = tempfile.mkdtemp(prefix="herald-outage-", dir="/var/tmp")
        postgres = pwd.getpwnam("postgres")
        os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, tool, *args):
        command = [f"{PG_BIN}/{tool}", *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self):
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "start",
                 "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1")

    def stop(self):
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop")

    def remove(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster():
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.remove()


def timed(base, method, path, body=None):
    """(status, content type, Retry-After, seconds taken, JSON body) of one API call."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    request.add_header("authorization", f"Bearer {TOKEN}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer, text = response, response.read()
    except urllib.error.HTTPError as error:
        answer, text = error, error.read()
    took = time.monotonic() - started
    headers = answer.headers
    body = json.loads(text) if text else None
    return answer.status, headers.get("content-type"), headers.get("retry-after"), took, body


def test_a_database_outage_answers_fast_and_loses_nothing(cluster):
    receiver = Receiver()
    herald, base = start_herald(cluster.url)
    accepted, refused, stop = [], [], threading.Event()

    def keep_posting():
        body = {"event_type": "new-subscription", "payload": json.loads(PAYLOAD)}
        while not stop.is_set():
            status, _, _, took, answer = timed(base, "POST", "/api/v1/tenants/acme/events", body)
            if status == 202:
                accepted.append(answer["id"])
            else:
                refused.append((status, took))
                time.sleep(0.05)

    try:
        assert call(base, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        assert call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})[0] == 201
        poster = threading.Thread(target=keep_posting)
        poster.start()
        time.sleep(1)

        cluster.stop()
        ready = timed(base, "GET", "/ready")
        assert ready[0] == 503 and ready[3] <= 2, f"/ready while the database is down: {ready}"
        for method, path, body in [
            ("POST", "/api/v1/tenants", {"id": "other"}),
            ("GET", "/api/v1/tenants/acme/endpoints", None),
            ("POST", "/api/v1/tenants/acme/events",
             {"event_type": "new-subscription", "payload": json.loads(PAYLOAD)}),
        ]:
            status, content_type, retry_after, took, _ = timed(base, method, path, body)
            assert (status, content_type) == (503, "application/problem+json"), (path, status)
            assert retry_after is not None and int(retry_after) > 0, path
            assert took <= 5, f"{method} {path} took {took:.1f} s"
        assert refused and all(status == 503 and took <= 5 for status, took in refused), refused
        print(f"database down: /ready 503 in {ready[3]:.2f} s, "
              f"API 503 in at most {max(took for _, took in refused):.2f} s")

        restarted = time.monotonic()
        cluster.start()
        while timed(base, "GET", "/ready")[0] != 200:
            assert time.monotonic() - restarted < 15, "herald did not recover"
            time.sleep(0.1)
        count = len(accepted)
        while len(accepted) == count:
            assert time.monotonic() - restarted < 15, "events are not accepted again"
            time.sleep(0.05)
        print(f"ready again {time.monotonic() - restarted:.1f} s after the restart")
        stop.set()
        poster.join()
        # Every 202 is delivered: nothing accepted was lost.
        arrived, _ = arrivals(receiver, accepted, seconds=60)
        missing = set(accepted) - set(arrived)
        if missing:
            ids = ",".join(f"'{event}'" for event in sorted(missing))
            state = subprocess.run(
                ["psql", cluster.url, "-Atc",
                 "SELECT d.event_id, d.state, d.attempts, d.next_attempt_at, d.lease_owner, "
                 "d.lease_expires_at, (extract(epoch from now()) * 1000)::bigint "
                 f"FROM deliveries d WHERE d.event_id IN ({ids}); "
                 "SELECT * FROM endpoint_queues; SELECT * FROM workers"],
                capture_output=True, text=True).stdout
            print(f"what the store says of the missing ones:\n{state}")
        assert not missing, f"{len(missing)} of {len(accepted)} accepted events never arrived"
        print(f"{len(accepted)} accepted, {len(refused)} refused with 503, "
              f"{sum(arrived.values()) - len(arrived)} duplicates")
    finally:
        stop.set()
        herald.terminate()
        herald.wait(timeout=15)
        receiver.close()
