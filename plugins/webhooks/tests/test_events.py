"""The payloads: the envelope every event shares, a failed request's data (and nothing
secret in it), and a breaker's change."""

import orjson
import pytest
from ferro import BreakerState, Exchange, Identity, UpstreamError
from ferro_webhooks.events import breaker_changed, new_event, request_failed


def failed_exchange(**overrides):
    fields = {
        "request_id": "req-1", "operation": "chat", "model": "gpt-4o", "provider": "primary",
        "stream": True, "status": 503, "started": 1_700_000_000.0, "duration": 0.4123456789,
        "error": UpstreamError("primary: upstream returned 503: overloaded", status=503,
                               provider="primary"),
        "identity": Identity("cfg-abc", "server.api_keys[0]"),
        "targets": ["primary", "backup"], "attempts": 3, "client_ip": "10.1.2.3",
        "metadata": {"note": "private"},
    }
    return Exchange(**{**fields, **overrides})


def test_an_event_body_is_its_envelope_as_json():
    event = new_event("request.failed", {"status": 500})
    assert orjson.loads(event.body()) == {"id": event.id, "type": "request.failed",
                                          "created": event.created, "data": {"status": 500}}
    assert event.id.startswith("evt_")
    assert new_event("request.failed", {}).id != event.id


def test_a_failed_request_reports_what_was_asked_and_the_error_answered():
    event = request_failed(failed_exchange())
    assert event.type == "request.failed"
    assert event.data == {
        "request_id": "req-1", "operation": "chat", "model": "gpt-4o", "provider": "primary",
        "stream": True, "status": 503,
        "error": {"type": "api_error", "code": "upstream_unavailable",
                  "message": "primary: upstream returned 503: overloaded"},
        "duration": 0.412346, "attempts": 3, "targets": ["primary", "backup"]}


def test_a_failed_request_carries_no_identity_address_or_metadata():
    body = request_failed(failed_exchange()).body()
    for private in (b"cfg-abc", b"api_keys", b"10.1.2.3", b"private"):
        assert private not in body


def test_a_failure_without_an_error_object_still_reports_its_status():
    event = request_failed(failed_exchange(status=500, error=None))
    assert (event.data["status"], event.data["error"]) == (500, None)


@pytest.mark.parametrize(("old", "new", "event_type", "states"), [
    (BreakerState.CLOSED, BreakerState.OPEN, "circuit_breaker.opened", ("closed", "open")),
    (BreakerState.OPEN, BreakerState.HALF_OPEN, "circuit_breaker.half_opened",
     ("open", "half_open")),
    (BreakerState.HALF_OPEN, BreakerState.CLOSED, "circuit_breaker.closed",
     ("half_open", "closed")),
    (BreakerState.HALF_OPEN, BreakerState.OPEN, "circuit_breaker.opened", ("half_open", "open")),
])
def test_a_breaker_change_is_named_for_the_state_entered(old, new, event_type, states):
    event = breaker_changed("primary", old, new)
    assert event.type == event_type
    assert event.data == {"provider": "primary", "from": states[0], "to": states[1]}
