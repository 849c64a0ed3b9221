"""herald as another process uses it: the HTTP API in, signed webhooks out.

Runs the real binary (HERALD_BIN) against SQLite and PostgreSQL (HERALD_TEST_DATABASE_URL's
server, a fresh database per test) and checks each delivery with the `standardwebhooks` package,
an implementation of the specification that herald's authors did not write.
"""

import http.server
import json
import os
import queue
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from standardwebhooks.webhooks import Webhook

HERALD = os.environ.get("HERALD_BIN", "target/release/herald")
PG_URL = os.environ.get("HERALD_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
TOKEN = "e2e-admin-token"
PAYLOAD = '{"username": "rick", "monthly_fee": 9.99, "start_date": "2026-11-22T08:00:00Z"}'


class Receiver:
    """A real HTTP receiver on 127.0.0.1, port 0, answering with scripted statuses."""

    def __init__(self, statuses=(), delay=0.0):
        self.requests = queue.Queue()
        self.statuses = list(statuses)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(delay)
                receiver.requests.put((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            # Python's default backlog is 5: a burst of herald's connections (up to 256 to one
            # endpoint) overflowed it, the kernel dropped their SYNs, and the retransmissions
            # ran some past herald's 15 s timeout, failing attempts a real server would take.
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def next(self, timeout=10):
        return self.requests.get(timeout=timeout)

    def close(self):
        self.server.shutdown()



def fresh_postgres_database():
    """Creates an empty database on PG_URL's server and yields its URL; drops it afterwards.
    Skips when the server is unreachable, except under CI=true, where that fails."""
    name = "herald_e2e_" + uuid.uuid4().hex[:12]
    try:
        subprocess.run(["psql", PG_URL, "-qc", f"CREATE DATABASE {name}"], check=True,
                       capture_output=True, timeout=30)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL unreachable: {error}")
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], timeout=30)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/herald.db"
    else:
        yield from fresh_postgres_database()


def start_herald(database_url, lease_seconds=60, extra=(), env=None):
    """Starts `herald serve` (with `extra` arguments and `env` variables) on a free port;
    returns the process and its base URL."""
    env = dict(os.environ, HERALD_ADMIN_TOKEN=TOKEN, **(env or {}))
    # HERALD_E2E_LOGS=DIR keeps each process's log there, for reading a failure.
    logs = os.environ.get("HERALD_E2E_LOGS")
    stderr = subprocess.DEVNULL
    if logs:
        os.makedirs(logs, exist_ok=True)
        stderr = open(os.path.join(logs, f"herald-{time.time_ns()}.log"), "w")
    process = subprocess.Popen(
        [HERALD, "serve", "--addr", "127.0.0.1:0", "--database-url", database_url,
         "--allow-target", "127.0.0.0/8", "--lease-seconds", str(lease_seconds), *extra],
        stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.match(r"herald listening on (\S+)", process.stdout.readline())
        if match:
            return process, match.group(1)
    process.kill()
    raise AssertionError("herald printed no address")


@pytest.fixture
def herald(database_url):
    process, base = start_herald(database_url)
    yield base
    process.terminate()
    process.wait(timeout=15)


def call(base, method, path, body=None, token=TOKEN):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("content-type"), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type"), json.loads(error.read())


def send_raw(base, tenant, raw_payload):
    body = ('{"event_type": "new-subscription", "payload": ' + raw_payload + "}").encode()
    request = urllib.request.Request(f"{base}/api/v1/tenants/{tenant}/events", data=body, method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        return json.loads(response.read())


def test_an_event_arrives_signed_and_verifies(herald):
    receiver = Receiver()
    try:
        assert call(herald, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        status, _, endpoint = call(herald, "POST", "/api/v1/tenants/acme/endpoints",
                                   {"url": receiver.url, "event_types": ["new-subscription"]})
        assert status == 201
        assert endpoint["secret"].startswith("whsec_")
        event = send_raw(herald, "acme", PAYLOAD)
        assert event["id"].startswith("evt_")
        assert event["deliveries"] == 1

        headers, body = receiver.next()
        assert body == PAYLOAD.encode(), "delivered exactly as sent"
        assert headers["webhook-id"] == event["id"]
        verified = Webhook(endpoint["secret"]).verify(body, headers)
        assert verified["username"] == "rick"
    finally:
        receiver.close()


def jwks(base, tenant):
    """The tenant's published public keys, fetched as a receiver would: no credential."""
    with urllib.request.urlopen(f"{base}/api/v1/tenants/{tenant}/jwks.json", timeout=10) as response:
        assert response.headers["content-type"] == "application/jwk-set+json"
        return json.loads(response.read())["keys"]


def test_ed25519_deliveries_verify_with_pynacl_and_the_published_keys(herald):
    """`v1a` signatures verified by PyNaCl (libsodium) with the key taken from the tenant's JWKS
    document, over the specification's signed content; the `v1` beside it by standardwebhooks."""
    import base64
    import hashlib

    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    receiver = Receiver()
    try:
        assert call(herald, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        assert jwks(herald, "acme") == []
        status, _, endpoint = call(herald, "POST", "/api/v1/tenants/acme/endpoints",
                                   {"url": receiver.url, "signature": "both"})
        assert status == 201, endpoint
        assert endpoint["signature"] == "both"
        [jwk] = jwks(herald, "acme")
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
        raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
        assert endpoint["public_key"] == "whpk_" + base64.b64encode(raw).decode()
        canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]},
                               separators=(",", ":"), sort_keys=True)
        thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
        assert jwk["kid"] == thumbprint.decode().rstrip("="), "the kid is the RFC 7638 thumbprint"
        key = VerifyKey(raw)

        event = send_raw(herald, "acme", PAYLOAD)
        headers, body = receiver.next()
        assert headers["webhook-id"] == event["id"]
        signatures = dict(part.split(",", 1) for part in headers["webhook-signature"].split())
        assert set(signatures) == {"v1", "v1a"}, headers["webhook-signature"]
        content = f'{headers["webhook-id"]}.{headers["webhook-timestamp"]}.'.encode() + body
        key.verify(content, base64.b64decode(signatures["v1a"]))
        with pytest.raises(BadSignatureError):
            key.verify(content.replace(b"rick", b"morty"), base64.b64decode(signatures["v1a"]))
        assert Webhook(endpoint["secret"]).verify(body, headers)["username"] == "rick"

        # Ed25519 alone: only a v1a signature, still verified with the published key.
        path = f"/api/v1/tenants/acme/endpoints/{endpoint['id']}"
        assert call(herald, "PATCH", path, {"signature": "ed25519"})[0] == 200
        send_raw(herald, "acme", PAYLOAD)
        headers, body = receiver.next()
        [(version, signature)] = [p.split(",", 1) for p in headers["webhook-signature"].split()]
        assert version == "v1a"
        content = f'{headers["webhook-id"]}.{headers["webhook-timestamp"]}.'.encode() + body
        key.verify(content, base64.b64decode(signature))
    finally:
        receiver.close()


def test_failures_are_retried_under_the_same_id(herald):
    receiver = Receiver(statuses=[500])
    try:
        call(herald, "POST", "/api/v1/tenants", {"id": "acme"})
        endpoint = call(herald, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})[2]
        event = send_raw(herald, "acme", PAYLOAD)
        first_headers, _ = receiver.next()
        # The default schedule retries 5 s (±20%) after the first failure.
        second_headers, body = receiver.next(timeout=15)
        assert first_headers["webhook-id"] == second_headers["webhook-id"] == event["id"]
        Webhook(endpoint["secret"]).verify(body, second_headers)
    finally:
        receiver.close()


def test_idempotency_keys_return_the_first_event(herald):
    call(herald, "POST", "/api/v1/tenants", {"id": "acme"})
    body = {"event_type": "new-subscription", "payload": json.loads(PAYLOAD), "idempotency_key": "k1"}
    first = call(herald, "POST", "/api/v1/tenants/acme/events", body)[2]
    again = call(herald, "POST", "/api/v1/tenants/acme/events", body)[2]
    assert again["id"] == first["id"]
    assert again["duplicate"] is True


def test_bad_input_is_a_problem_not_a_crash(herald):
    call(herald, "POST", "/api/v1/tenants", {"id": "acme"})
    status, content_type, problem = call(herald, "POST", "/api/v1/tenants/acme/events", {
        "event_type": "new-subscription",
        "payload": {"username": "rick", "monthly_fee": "free", "start_date": "yesterday"}})
    assert status == 422
    assert content_type == "application/problem+json"
    paths = sorted(error["path"] for error in problem["errors"])
    assert paths == ["/payload/monthly_fee", "/payload/start_date"]

    assert call(herald, "POST", "/api/v1/tenants/acme/events",
                {"event_type": "nope", "payload": {}})[0] == 422
    assert call(herald, "POST", "/api/v1/tenants/ghost/events",
                {"event_type": "new-subscription", "payload": json.loads(PAYLOAD)})[0] == 404
    assert call(herald, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 409
    assert call(herald, "POST", "/api/v1/tenants", {"id": "acme"}, token=None)[0] == 401
    assert call(herald, "POST", "/api/v1/tenants", {"id": "x"}, token="wrong")[0] == 401
    status, _, problem = call(herald, "POST", "/api/v1/tenants/acme/endpoints",
                              {"url": "http://169.254.169.254/latest/meta-data"})
    assert status == 422
    assert "link-local" in problem["errors"][0]["message"]
