"""Versioned webhooks end to end: endpoints pinned to two versions receive one event, each body
valid against its own version's schema in the served OpenAPI document (checked with the
`jsonschema` package) and verified by `standardwebhooks`.

The default app declares `subscription-renewed` in two versions: 2026-01-01 (the fee as a float)
and 2026-12-01 (the fee in cents with a currency), with a Rust conversion from the second to the
first. In `--spec` mode the same document is read back without conversions.
"""

import json
import subprocess
import urllib.request

import jsonschema
import pytest
from standardwebhooks.webhooks import Webhook

from test_delivery import HERALD, Receiver, call, start_herald
from test_delivery import database_url  # noqa: F401  (pytest fixture, both backends)
from test_delivery import herald  # noqa: F401  (pytest fixture: the default app)

OLD, NEW = "2026-01-01", "2026-12-01"
RENEWAL = {"username": "rick", "fee": {"amount": 1250, "currency": "EUR"}}


def schema_of(document, key):
    """The body schema of webhook `key` in `document`, self-contained for `jsonschema`."""
    ref = document["webhooks"][key]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return {"$ref": ref["$ref"], "components": document["components"]}


def served_document(base):
    with urllib.request.urlopen(base + "/openapi.json", timeout=10) as response:
        return json.loads(response.read())


def pinned(base, url, version=None):
    body = {"url": url, "event_types": ["subscription-renewed"]}
    if version:
        body["version"] = version
    status, _, endpoint = call(base, "POST", "/api/v1/tenants/acme/endpoints", body)
    assert status == 201, endpoint
    return endpoint


def test_two_endpoints_pinned_to_two_versions_receive_one_event_each_in_its_own(herald):  # noqa: F811
    document = served_document(herald)
    old_schema, new_schema = schema_of(document, f"subscription-renewed@{OLD}"), schema_of(
        document, "subscription-renewed")
    assert document["webhooks"]["subscription-renewed"]["post"]["x-herald-version"] == NEW
    old_receiver, new_receiver = Receiver(), Receiver()
    try:
        assert call(herald, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        old = pinned(herald, old_receiver.url, OLD)
        new = pinned(herald, new_receiver.url)
        assert (old["version"], new["version"]) == (OLD, NEW)

        status, _, event = call(herald, "POST", "/api/v1/tenants/acme/events",
                                {"event_type": "subscription-renewed", "payload": RENEWAL})
        assert status == 202, event
        assert event["deliveries"] == 2

        for receiver, endpoint, version, schema in [(old_receiver, old, OLD, old_schema),
                                                    (new_receiver, new, NEW, new_schema)]:
            headers, body = receiver.next()
            assert headers["webhook-id"] == event["id"]
            assert headers["herald-event-version"] == version
            payload = Webhook(endpoint["secret"]).verify(body, headers)
            jsonschema.validate(payload, schema)
            print(f"{version}: {body.decode()}")
            if version == OLD:
                assert payload == {"username": "rick", "monthly_fee": 12.5}
                with pytest.raises(jsonschema.ValidationError):
                    jsonschema.validate(payload, new_schema)
            else:
                assert payload == RENEWAL
    finally:
        old_receiver.close()
        new_receiver.close()


def test_spec_mode_reads_the_versions_and_delivers_only_what_is_sent(database_url, tmp_path):  # noqa: F811
    """Without the application's code there are no conversions: each version reaches the
    endpoints pinned to it, and only when the sender sends that version."""
    spec = tmp_path / "openapi.json"
    spec.write_text(subprocess.run([HERALD, "openapi"], check=True, capture_output=True,
                                   text=True).stdout)
    process, base = start_herald(database_url, extra=["--spec", str(spec)])
    old_receiver, new_receiver = Receiver(), Receiver()
    try:
        status, _, catalogue = call(base, "GET", "/api/v1/event-types/subscription-renewed")
        assert status == 200
        assert [v["version"] for v in catalogue["versions"]] == [OLD, NEW]
        assert all(v["converts_to"] is None for v in catalogue["versions"])
        assert call(base, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        old = pinned(base, old_receiver.url, OLD)
        pinned(base, new_receiver.url, NEW)

        status, _, newest = call(base, "POST", "/api/v1/tenants/acme/events",
                                 {"event_type": "subscription-renewed", "payload": RENEWAL})
        assert status == 202 and newest["deliveries"] == 1, newest
        first = {"username": "rick", "monthly_fee": 12.5}
        status, _, oldest = call(base, "POST", "/api/v1/tenants/acme/events",
                                 {"event_type": "subscription-renewed", "version": OLD,
                                  "payload": first})
        assert status == 202 and oldest["deliveries"] == 1, oldest

        headers, body = new_receiver.next()
        assert (headers["webhook-id"], headers["herald-event-version"]) == (newest["id"], NEW)
        headers, body = old_receiver.next()
        assert (headers["webhook-id"], headers["herald-event-version"]) == (oldest["id"], OLD)
        assert Webhook(old["secret"]).verify(body, headers) == first
    finally:
        old_receiver.close()
        new_receiver.close()
        process.terminate()
        process.wait(timeout=15)


def test_the_client_pins_and_sends_versions(tmp_path):
    from test_client import client

    receiver = Receiver()
    process, base = start_herald(f"sqlite://{tmp_path}/herald.db")
    try:
        assert call(base, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        added = client(base, "endpoints", "add", receiver.url, "--type", "subscription-renewed",
                       "--version", OLD)
        assert added.returncode == 0, added.stderr
        assert f"version: {OLD}" in added.stdout.splitlines(), added.stdout
        refused = client(base, "endpoints", "add", receiver.url, "--version", "1999-01-01")
        assert refused.returncode != 0 and "2026-01-01, 2026-12-01" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr

        sent = client(base, "send", "--type", "subscription-renewed", "--version", OLD,
                      "--data", '{"username": "rick", "monthly_fee": 12.5}')
        assert sent.returncode == 0 and "accepted: 1 deliveries" in sent.stdout, sent.stderr
        headers, body = receiver.next()
        assert headers["herald-event-version"] == OLD
        assert json.loads(body) == {"username": "rick", "monthly_fee": 12.5}
    finally:
        receiver.close()
        process.terminate()
        process.wait(timeout=15)
