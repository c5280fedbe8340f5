"""Token buckets: their shapes, and what a request asks of them.

A bucket holds up to ``capacity`` units and refills at ``per_second`` units a second; an
absent bucket is full. A request *checks* its buckets: it is admitted when every one holds
at least one unit, and then takes its cost from each (one from a request bucket, nothing
from a token bucket). Tokens are *debited* once the upstream has said how many were used,
whatever the level, so a token bucket may go below zero by one request's worth; it admits
again once it has refilled to one.

Backends (:mod:`ferro_ratelimit.memory`, :mod:`ferro_ratelimit.redis_backend`) keep the
levels and apply exactly these rules; the rest of the plugin only builds :class:`Check`
lists and reads the levels they answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import attrs

from ferro_ratelimit.options import Limit

__all__ = ["Backend", "Check", "Policy", "Rate", "Verdict"]

REQUESTS = "requests"
TOKENS = "tokens"


@attrs.frozen(cache_hash=True)
class Rate:
    """A bucket's shape."""

    capacity: float
    per_second: float
    #: What it counts: ``requests`` or ``tokens``.
    unit: str
    #: The limit as a message names it: ``10 requests per second (burst 20)``.
    text: str

    def refill(self, level: float, elapsed: float) -> float:
        """The level ``elapsed`` seconds after it was ``level`` (time running backwards, as
        on a Redis failover, refills nothing)."""
        return min(self.capacity, level + max(0.0, elapsed) * self.per_second)

    def wait(self, level: float) -> float:
        """Seconds until a bucket at ``level`` holds one unit."""
        return max(0.0, (1 - level) / self.per_second)

    def reset(self, level: float) -> float:
        """Seconds until a bucket at ``level`` is full again."""
        return max(0.0, (self.capacity - level) / self.per_second)


class Check(NamedTuple):
    """One bucket a request asks of: its key, shape and cost, and whose bucket it is (for
    the refusal's message and metrics)."""

    key: str
    rate: Rate
    cost: float
    #: ``api_key``, ``ip`` or ``provider``.
    kind: str
    who: str


#: Whether every bucket admitted the request, and each one's level after it (before it,
#: for a refused request), in the order of the checks.
Verdict = tuple[bool, list[float]]


class Backend(Protocol):
    """Where the levels live."""

    async def take(self, checks: Sequence[Check]) -> Verdict | None:
        """Admit or refuse, atomically over ``checks``; None when the backend failed and
        the request is to go through unlimited."""
        ...

    def debit(self, checks: Sequence[Check]) -> None:
        """Take each check's cost whatever the level, now or soon (off the request path)."""
        ...

    async def aclose(self) -> None: ...


@attrs.frozen
class Policy:
    """A :class:`~ferro_ratelimit.options.Limit` as buckets: its request bucket's shape and
    its token bucket's, each None when that limit is off."""

    requests: Rate | None
    tokens: Rate | None

    @classmethod
    def of(cls, limit: Limit) -> Policy | None:
        """None for a limit with nothing on."""
        requests = tokens = None
        rps, tpm = limit.requests_per_second, limit.tokens_per_minute
        if rps:
            burst = max(1.0, limit.burst or rps)
            requests = Rate(burst, rps, REQUESTS,
                            f"{rps:g} requests per second (burst {burst:g})")
        if tpm:
            tokens = Rate(tpm, tpm / 60, TOKENS, f"{tpm:g} tokens per minute")
        if requests is None and tokens is None:
            return None
        return cls(requests, tokens)

    def checks(self, bucket: str, kind: str, who: str) -> list[Check]:
        """What one request asks of this owner's buckets (named ``bucket``)."""
        out = []
        if self.requests is not None:
            out.append(Check(bucket + ":r", self.requests, 1.0, kind, who))
        if self.tokens is not None:
            out.append(Check(bucket + ":t", self.tokens, 0.0, kind, who))
        return out

    def debit(self, bucket: str, tokens: int) -> Check | None:
        """The debit of ``tokens`` used, or None without a token limit."""
        if self.tokens is None:
            return None
        return Check(bucket + ":t", self.tokens, float(tokens), "", "")
