"""Standalone mode: herald serves the webhooks of a document FastAPI generates, for an
application that is not written in Rust.

The document is generated here, by FastAPI from PyPI, from FastAPI's own webhooks example
(fastapi_app/app.py), and given to `herald serve --spec` unchanged.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from test_delivery import HERALD, Receiver, call, start_herald
from test_delivery import database_url  # noqa: F401  (pytest fixture, both backends)

APP = Path(__file__).parent / "fastapi_app" / "app.py"


@pytest.fixture(scope="module")
def fastapi_document(tmp_path_factory):
    text = subprocess.run([sys.executable, str(APP)], check=True, capture_output=True,
                          text=True).stdout
    path = tmp_path_factory.mktemp("spec") / "openapi.json"
    path.write_text(text)
    return path


@pytest.fixture
def herald_spec(database_url, fastapi_document):  # noqa: F811
    process, base = start_herald(database_url, extra=["--spec", str(fastapi_document)])
    yield base
    process.terminate()
    process.wait(timeout=15)


def test_fastapi_s_webhook_is_served_validated_and_delivered(herald_spec, fastapi_document):
    fastapi = json.loads(fastapi_document.read_text())
    status, _, catalogue = call(herald_spec, "GET", "/api/v1/event-types")
    assert status == 200
    # The document's one webhook, then herald's own operational ones.
    [new_subscription] = [t for t in catalogue["data"] if not t["operational"]]
    assert new_subscription["name"] == "new-subscription"
    assert new_subscription["description"] == \
        fastapi["webhooks"]["new-subscription"]["post"]["description"]
    assert new_subscription["schema"]["components"]["schemas"]["Subscription"] == \
        fastapi["components"]["schemas"]["Subscription"]

    receiver = Receiver()
    try:
        assert call(herald_spec, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        status, _, endpoint = call(herald_spec, "POST", "/api/v1/tenants/acme/endpoints",
                                   {"url": receiver.url, "event_types": ["new-subscription"]})
        assert status == 201
        payload = {"username": "rick", "monthly_fee": 9.99, "start_date": "2026-11-22T08:00:00Z"}
        status, _, event = call(herald_spec, "POST", "/api/v1/tenants/acme/events",
                                {"event_type": "new-subscription", "payload": payload})
        assert status == 202, event
        headers, body = receiver.next()
        assert headers["webhook-id"] == event["id"]
        assert Webhook(endpoint["secret"]).verify(body, headers) == payload

        status, content_type, problem = call(
            herald_spec, "POST", "/api/v1/tenants/acme/events",
            {"event_type": "new-subscription", "payload": {"username": "rick", "monthly_fee": "free"}})
        assert status == 422
        assert content_type == "application/problem+json"
        messages = " ".join(f"{e['path']} {e['message']}" for e in problem["errors"])
        assert "/payload/monthly_fee" in messages
        assert "start_date" in messages
    finally:
        receiver.close()

    # The served document: FastAPI's own, its webhook as FastAPI declared it; herald's API is
    # in a document of its own, which refers to the same payload schema.
    status, _, served = call(herald_spec, "GET", "/openapi.json")
    assert status == 200
    ours = served["webhooks"]["new-subscription"]["post"]
    assert ours["operationId"] == fastapi["webhooks"]["new-subscription"]["post"]["operationId"]
    assert served["components"]["schemas"]["Subscription"] == \
        fastapi["components"]["schemas"]["Subscription"]
    assert not [path for path in served.get("paths", {}) if path.startswith("/api/")]
    status, _, api = call(herald_spec, "GET", "/api/v1/openapi.json")
    assert status == 200
    assert "/api/v1/tenants/{tenant}/events" in api["paths"]
    assert api["components"]["schemas"]["Subscription"] == \
        fastapi["components"]["schemas"]["Subscription"]


def test_a_document_herald_cannot_serve_stops_it_with_the_pointer(tmp_path):
    broken = json.loads(subprocess.run([sys.executable, str(APP)], check=True,
                                       capture_output=True, text=True).stdout)
    del broken["components"]["schemas"]["Subscription"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run([HERALD, "serve", "--spec", str(path), "--addr", "127.0.0.1:0",
                             "--database-url", f"sqlite://{tmp_path}/h.db"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "#/webhooks/new-subscription/post/requestBody/content/application~1json/schema/$ref" \
        in lines[0]
    assert "#/components/schemas/Subscription` is not in this document" in lines[0]
