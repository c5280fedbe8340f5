"""The events posted to endpoints: their types, the envelope every one of them shares, and
the payloads of a failed request and of a circuit breaker's change.

Every body is ``{"id", "type", "created", "data"}``: ``id`` is unique to the event (the same
on each retry, for a receiver to de-duplicate), ``created`` the Unix time in seconds it
happened at, and ``data`` what the type says (see README.md, "Events").
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import attrs
import orjson
from ferro import BreakerState, Exchange

__all__ = [
    "BREAKER_CLOSED",
    "BREAKER_EVENTS",
    "BREAKER_HALF_OPENED",
    "BREAKER_OPENED",
    "EVENT_TYPES",
    "REQUEST_FAILED",
    "THRESHOLD_CROSSED",
    "THRESHOLD_RECOVERED",
    "Event",
    "breaker_changed",
    "new_event",
    "request_failed",
]

REQUEST_FAILED = "request.failed"
BREAKER_OPENED = "circuit_breaker.opened"
BREAKER_HALF_OPENED = "circuit_breaker.half_opened"
BREAKER_CLOSED = "circuit_breaker.closed"
THRESHOLD_CROSSED = "threshold.crossed"
THRESHOLD_RECOVERED = "threshold.recovered"

EVENT_TYPES = (REQUEST_FAILED, BREAKER_OPENED, BREAKER_HALF_OPENED, BREAKER_CLOSED,
               THRESHOLD_CROSSED, THRESHOLD_RECOVERED)

#: The event a breaker entering each state is reported as.
BREAKER_EVENTS = {BreakerState.OPEN: BREAKER_OPENED, BreakerState.HALF_OPEN: BREAKER_HALF_OPENED,
                  BreakerState.CLOSED: BREAKER_CLOSED}


@attrs.frozen
class Event:
    id: str
    type: str
    created: int
    data: dict[str, Any]

    def body(self) -> bytes:
        """The JSON body posted (and signed)."""
        return orjson.dumps({"id": self.id, "type": self.type, "created": self.created,
                             "data": self.data})


def new_event(event_type: str, data: dict[str, Any]) -> Event:
    """An event of ``event_type`` happening now, with a fresh id."""
    return Event("evt_" + secrets.token_hex(12), event_type, int(time.time()), data)


def request_failed(exchange: Exchange) -> Event:
    """A request that failed: what was asked, of which provider, and the error the client
    was answered with. Nothing of the request's headers or body, and no key."""
    error = exchange.error
    return new_event(REQUEST_FAILED, {
        "request_id": exchange.request_id,
        "operation": exchange.operation,
        "model": exchange.model,
        "provider": exchange.provider,
        "stream": exchange.stream,
        "status": exchange.status,
        "error": None if error is None else {"type": error.type, "code": error.code,
                                             "message": error.message},
        "duration": round(exchange.duration, 6),
        "attempts": exchange.attempts,
        "targets": list(exchange.targets),
    })


def breaker_changed(provider: str, old: BreakerState, new: BreakerState) -> Event:
    """Target ``provider``'s circuit breaker went from ``old`` to ``new``."""
    return new_event(BREAKER_EVENTS[new], {"provider": provider, "from": _state(old),
                                           "to": _state(new)})


def _state(state: BreakerState) -> str:
    return state.name.lower()
