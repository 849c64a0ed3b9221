"""Tracing end to end: herald started with `telemetry.otlp_endpoint` exports its spans over
OTLP/HTTP to a receiver this test starts, which decodes each export with OpenTelemetry's own
protobuf definitions (PyPI `opentelemetry-proto`). An event sent with a W3C `traceparent`
continues that trace: its accept and its attempt are spans of it, and the delivery hands the
trace on to the receiver. Without the setting, the caller's `traceparent` still reaches the
receiver, unchanged, and nothing is exported."""

import http.server
import json
import queue
import threading
import time
import urllib.request

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from test_delivery import PAYLOAD, TOKEN, Receiver, call, start_herald
from test_delivery import database_url  # noqa: F401  (pytest fixture, both backends)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE}-00f067aa0ba902b7-01"


class Collector:
    """An OTLP/HTTP trace receiver on 127.0.0.1, port 0: every span exported to it."""

    def __init__(self):
        self.spans = queue.Queue()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                assert self.path == "/v1/traces", self.path
                assert self.headers["content-type"] == "application/x-protobuf"
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    service = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            collector.spans.put((service.get("service.name"), span))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def of_trace(self, trace_id, names, timeout=20):
        """The spans of `trace_id`, by name, once every one of `names` has arrived."""
        found = {}
        deadline = time.monotonic() + timeout
        while not set(names) <= set(found):
            left = deadline - time.monotonic()
            assert left > 0, f"only {sorted(found)} of {names} arrived"
            try:
                service, span = self.spans.get(timeout=left)
            except queue.Empty:
                continue
            if span.trace_id.hex() == trace_id:
                assert service == "herald"
                found[span.name] = span
        return found

    def close(self):
        self.server.shutdown()


def send_traced(base, traceparent):
    body = json.dumps({"event_type": "new-subscription", "payload": json.loads(PAYLOAD)}).encode()
    request = urllib.request.Request(f"{base}/api/v1/tenants/acme/events", data=body, method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("authorization", f"Bearer {TOKEN}")
    request.add_header("traceparent", traceparent)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        return json.loads(response.read())


def attributes(span):
    values = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        values[a.key] = getattr(a.value, kind) if kind else None
    return values


def test_a_trace_runs_from_the_callers_traceparent_to_the_receivers_request(database_url):  # noqa: F811
    collector, receiver = Collector(), Receiver()
    process, base = start_herald(database_url,
                                 env={"HERALD_TELEMETRY__OTLP_ENDPOINT": collector.url})
    try:
        assert call(base, "POST", "/api/v1/tenants", {"id": "acme"})[0] == 201
        assert call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})[0] == 201
        event = send_traced(base, CALLER)
        headers, _ = receiver.next()
        assert headers["webhook-id"] == event["id"]
        version, trace_id, parent_id, flags = headers["traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", TRACE, "01"), headers["traceparent"]

        spans = collector.of_trace(TRACE, ["accept", "store", "attempt"])
        accept, store, attempt = spans["accept"], spans["store"], spans["attempt"]
        assert accept.parent_span_id.hex() == "00f067aa0ba902b7", "the caller's span is the parent"
        assert store.parent_span_id == accept.span_id
        assert attempt.parent_span_id == accept.span_id, "the attempt continues the accept"
        assert attempt.span_id.hex() == parent_id, "the receiver's parent is the attempt"
        assert attributes(attempt)["http.response.status_code"] == 200
        assert attributes(attempt)["delivery"].startswith("dlv_")
        assert attributes(accept)["event_type"] == "new-subscription"
        assert attempt.end_time_unix_nano > attempt.start_time_unix_nano
    finally:
        process.terminate()
        process.wait(timeout=15)
        receiver.close()
        collector.close()


def test_without_telemetry_the_callers_traceparent_reaches_the_receiver_unchanged(tmp_path):
    receiver = Receiver()
    process, base = start_herald(f"sqlite://{tmp_path}/herald.db")
    try:
        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        call(base, "POST", "/api/v1/tenants/acme/endpoints", {"url": receiver.url})
        send_traced(base, CALLER)
        headers, _ = receiver.next()
        assert headers["traceparent"] == CALLER
        send_traced(base, "not-a-traceparent")
        headers, _ = receiver.next()
        assert "traceparent" not in {k.lower() for k in headers}, "an invalid one is dropped"
    finally:
        process.terminate()
        process.wait(timeout=15)
        receiver.close()
