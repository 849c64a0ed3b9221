"""Operational webhooks end to end: herald tells an operator endpoint (tenant `_operator`, every
tenant) and a tenant's own endpoint when an endpoint is disabled, fails or recovers, signed like
any delivery (checked with `standardwebhooks`) and valid against the schemas under `webhooks`
in herald's API document (checked with `jsonschema`)."""

import json
import queue
import urllib.request

import jsonschema
from standardwebhooks.webhooks import Webhook

from test_delivery import PAYLOAD, Receiver, call
from test_delivery import database_url, herald  # noqa: F401  (pytest fixtures, both backends)

OPERATIONAL = ["delivery.dead", "endpoint.disabled", "endpoint.failing", "endpoint.recovered",
               "replay.finished"]


def api_document(base):
    request = urllib.request.Request(base + "/api/v1/openapi.json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def check(document, secret, headers, body):
    """Verifies the signature and the body against its webhook's schema; returns the body."""
    Webhook(secret).verify(body, headers)
    payload = json.loads(body)
    operation = document["webhooks"][payload["type"]]["post"]
    assert "operational" in operation["tags"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    jsonschema.validate(payload, {"$ref": ref, "components": document["components"]})
    return payload


def received(receiver, document, secret, count):
    return [check(document, secret, *receiver.next(timeout=15)) for _ in range(count)]


def nothing_more(receiver, seconds=1.5):
    try:
        headers, body = receiver.requests.get(timeout=seconds)
    except queue.Empty:
        return
    raise AssertionError(f"unexpected: {body!r}")


def endpoint(base, tenant, url, event_types):
    status, _, created = call(base, "POST", f"/api/v1/tenants/{tenant}/endpoints",
                              {"url": url, "event_types": event_types})
    assert status == 201, created
    return created


def send(base):
    body = {"event_type": "new-subscription", "payload": json.loads(PAYLOAD)}
    status, _, event = call(base, "POST", "/api/v1/tenants/acme/events", body)
    assert status == 202, event
    return event


def test_an_endpoint_answering_410_is_told_once_signed_to_the_operator_and_its_tenant(herald):  # noqa: F811
    document = api_document(herald)
    app, operator, tenants_own = Receiver(statuses=[410]), Receiver(), Receiver()
    try:
        assert call(herald, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        hook = endpoint(herald, "acme", app.url, [])
        ops = endpoint(herald, "_operator", operator.url, OPERATIONAL)
        own = endpoint(herald, "acme", tenants_own.url, ["endpoint.disabled"])
        event = send(herald)
        assert event["deliveries"] == 1, "the operational endpoint does not take app events"
        headers, _ = app.next()
        assert headers["webhook-id"] == event["id"]

        told = received(operator, document, ops["secret"], 2)
        by_type = {p["type"]: p for p in told}
        assert sorted(by_type) == ["delivery.dead", "endpoint.disabled"], told
        disabled = by_type["endpoint.disabled"]
        assert (disabled["tenant"], disabled["endpoint_id"], disabled["url"]) == (
            "acme", hook["id"], app.url)
        assert disabled["reason"] == "the endpoint answered 410 Gone"
        assert disabled["last_attempt"]["status_code"] == 410
        assert by_type["delivery.dead"]["event_id"] == event["id"]
        nothing_more(operator)

        [mine] = received(tenants_own, document, own["secret"], 1)
        assert mine == disabled, "the tenant hears what the operator hears"
        nothing_more(tenants_own)

        status, _, shown = call(herald, "GET", f"/api/v1/tenants/acme/endpoints/{hook['id']}")
        assert status == 200 and not shown["enabled"], shown
        # The notice is in each tenant's log, as an event of its own.
        status, _, log = call(herald, "GET", "/api/v1/tenants/_operator/events?event_type=endpoint.disabled")
        assert status == 200 and len(log["data"]) == 1, log
    finally:
        for receiver in (app, operator, tenants_own):
            receiver.close()


def test_a_failing_then_healthy_endpoint_is_told_failing_then_recovered(herald):  # noqa: F811
    document = api_document(herald)
    app, operator = Receiver(statuses=[503]), Receiver()
    try:
        call(herald, "POST", "/api/v1/tenants", {"id": "acme"})
        hook = endpoint(herald, "acme", app.url, ["new-subscription"])
        ops = endpoint(herald, "_operator", operator.url, ["endpoint.failing", "endpoint.recovered"])
        event = send(herald)
        first, _ = app.next()
        [failing] = received(operator, document, ops["secret"], 1)
        assert failing["type"] == "endpoint.failing"
        assert (failing["endpoint_id"], failing["failures"], failing["circuit_open"]) == (
            hook["id"], 1, False)
        assert failing["last_attempt"]["status_code"] == 503
        # The retry (about 5 s later) succeeds.
        again, _ = app.next(timeout=15)
        assert again["webhook-id"] == first["webhook-id"] == event["id"]
        [recovered] = received(operator, document, ops["secret"], 1)
        assert recovered["type"] == "endpoint.recovered"
        assert (recovered["endpoint_id"], recovered["failures"]) == (hook["id"], 1)
        assert recovered["failing_since"] == failing["failing_since"]
        nothing_more(operator)
    finally:
        app.close()
        operator.close()


def test_only_herald_sends_operational_webhooks_and_owns_underscore_tenants(herald):  # noqa: F811
    call(herald, "POST", "/api/v1/tenants", {"id": "acme"})
    body = {"event_type": "endpoint.disabled", "payload": {}}
    status, content_type, problem = call(herald, "POST", "/api/v1/tenants/acme/events", body)
    assert (status, content_type) == (422, "application/problem+json"), problem
    assert "operational" in problem["title"] + problem.get("detail", ""), problem
    status, content_type, problem = call(herald, "POST", "/api/v1/tenants", {"id": "_mine"})
    assert (status, content_type) == (422, "application/problem+json"), problem
    status, _, catalogue = call(herald, "GET", "/api/v1/event-types")
    kinds = {t["name"]: t["operational"] for t in catalogue["data"]}
    assert [name for name, operational in kinds.items() if operational] == OPERATIONAL
    assert kinds["new-subscription"] is False
