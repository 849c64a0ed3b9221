"""Nothing skipped silently: what an endpoint misses while it is disabled is recorded as
`skipped`, and sent, in order, when it is enabled with `deliver_skipped`."""

import json

from standardwebhooks.webhooks import Webhook

from test_delivery import PAYLOAD, Receiver, call
from test_delivery import database_url, herald  # noqa: F401  (pytest fixtures, both backends)


def send(base, username, key=None):
    payload = dict(json.loads(PAYLOAD), username=username)
    body = {"event_type": "new-subscription", "payload": payload}
    if key:
        body["ordering_key"] = key
    status, _, event = call(base, "POST", "/api/v1/tenants/acme/events", body)
    assert status == 202, event
    return event


def test_events_sent_while_disabled_arrive_in_order_after_enabling(herald):  # noqa: F811
    receiver = Receiver()
    try:
        assert call(herald, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        status, _, endpoint = call(herald, "POST", "/api/v1/tenants/acme/endpoints",
                                   {"url": receiver.url})
        assert status == 201
        path = f"/api/v1/tenants/acme/endpoints/{endpoint['id']}"
        assert call(herald, "PATCH", path, {"enabled": False})[0] == 200

        missed = [send(herald, f"user-{n}", key="acme-billing" if n % 2 else None)
                  for n in range(6)]
        assert all((e["deliveries"], e["skipped"]) == (0, 1) for e in missed), missed
        status, _, log = call(herald, "GET",
                              f"/api/v1/tenants/acme/deliveries?endpoint={endpoint['id']}&state=skipped")
        assert status == 200 and len(log["data"]) == 6, log

        # Staying disabled, there is nothing to deliver them to: a 409, not a silent no-op.
        status, content_type, problem = call(herald, "PATCH", path, {"deliver_skipped": True})
        assert status == 409 and content_type == "application/problem+json", problem

        status, _, enabled = call(herald, "PATCH", path, {"enabled": True, "deliver_skipped": True})
        assert status == 200 and enabled["enabled"], enabled
        arrived = []
        for _ in missed:
            headers, body = receiver.next()
            Webhook(endpoint["secret"]).verify(body, headers)
            arrived.append(headers["webhook-id"])
        assert sorted(arrived) == sorted(e["id"] for e in missed), "each once"
        keyed = [e["id"] for n, e in enumerate(missed) if n % 2]
        assert [i for i in arrived if i in keyed] == keyed, "the key's events in acceptance order"
        status, _, log = call(herald, "GET",
                              f"/api/v1/tenants/acme/deliveries?endpoint={endpoint['id']}&state=skipped")
        assert log["data"] == []
    finally:
        receiver.close()


def test_enabling_without_deliver_skipped_keeps_them_in_the_log(herald):  # noqa: F811
    receiver = Receiver()
    try:
        call(herald, "POST", "/api/v1/tenants", {"id": "acme"})
        endpoint = call(herald, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})[2]
        path = f"/api/v1/tenants/acme/endpoints/{endpoint['id']}"
        call(herald, "PATCH", path, {"enabled": False})
        missed = send(herald, "rick")
        assert call(herald, "PATCH", path, {"enabled": True})[0] == 200
        fresh = send(herald, "morty")
        headers, _ = receiver.next()
        assert headers["webhook-id"] == fresh["id"], "only what came after"
        status, _, log = call(herald, "GET",
                              f"/api/v1/tenants/acme/deliveries?endpoint={endpoint['id']}&state=skipped")
        assert [d["event_id"] for d in log["data"]] == [missed["id"]]
        # One of them, sent by hand.
        delivery = log["data"][0]["id"]
        assert call(herald, "POST", f"/api/v1/tenants/acme/deliveries/{delivery}/retry")[0] == 202
        headers, _ = receiver.next()
        assert headers["webhook-id"] == missed["id"]
    finally:
        receiver.close()
