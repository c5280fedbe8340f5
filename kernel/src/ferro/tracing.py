"""W3C trace context (``traceparent``, ``tracestate``) for every request.

Each request has a :class:`TraceContext`: the trace it belongs to (the client's, from an
incoming ``traceparent``, else a new one, sampled), its own span id in the gateway, and its
parent (the client's span). Each upstream call gets a span id of its own and sends the
trace on as ``traceparent`` (and the client's ``tracestate``), so the upstream's spans hang
under it. Exchanges carry the trace, so logs, request-log rows and exporters
(``ferro-otel``) name the same ids.
"""

from __future__ import annotations

import os
import random
import re

import attrs

__all__ = ["TraceContext", "new_span_id"]

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_random = random.Random()
# a forked worker would otherwise repeat its parent's ids
os.register_at_fork(after_in_child=_random.seed)


def new_span_id() -> str:
    """A fresh span id: 16 hex digits, never all zero."""
    return f"{_random.getrandbits(64) | 1:016x}"


@attrs.frozen(slots=True)
class TraceContext:
    """The trace a request belongs to, and where it sits in it."""

    trace_id: str
    #: This request's span in the gateway.
    span_id: str
    #: The client's span, from its ``traceparent`` (None: the gateway started the trace).
    parent_id: str | None = None
    sampled: bool = True
    #: The client's ``tracestate``, passed on as it came.
    state: str | None = None

    @classmethod
    def new(cls) -> TraceContext:
        return cls(f"{_random.getrandbits(128) | 1:032x}", new_span_id())

    @classmethod
    def from_headers(cls, traceparent: str | None, tracestate: str | None) -> TraceContext:
        """The request's trace: under a valid ``traceparent``, else a new one (an invalid
        header starts a new trace, as the W3C recommendation says)."""
        if traceparent:
            m = _TRACEPARENT.fullmatch(traceparent.strip())
            if m is not None:
                version, trace_id, parent_id, flags = m.groups()
                if version != "ff" and trace_id != "0" * 32 and parent_id != "0" * 16:
                    state = tracestate.strip() if tracestate and len(tracestate) <= 512 \
                        else None
                    return cls(trace_id, new_span_id(), parent_id,
                               bool(int(flags, 16) & 1), state or None)
        return cls.new()

    def headers(self, span_id: str) -> dict[str, str]:
        """The trace context headers of an upstream call made from span ``span_id``."""
        if self.state is None:
            return {"traceparent": self.traceparent(span_id)}
        return {"traceparent": self.traceparent(span_id), "tracestate": self.state}

    def traceparent(self, span_id: str) -> str:
        """The ``traceparent`` header of a call made from span ``span_id`` of this trace."""
        return f"00-{self.trace_id}-{span_id}-{'01' if self.sampled else '00'}"
