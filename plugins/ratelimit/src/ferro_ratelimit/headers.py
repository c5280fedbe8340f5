"""What a reply says about the limits, in the headers OpenAI's API sends.

``x-ratelimit-limit-requests`` / ``-tokens``: the bucket's capacity;
``x-ratelimit-remaining-requests`` / ``-tokens``: the whole units left in it;
``x-ratelimit-reset-requests`` / ``-tokens``: the time until it is full again, written as
OpenAI writes it (``1s``, ``6m0s``, ``250ms``). Where a request draws on several buckets of
one unit (its key's and its address's), the one with the least left is reported. A refused
request also gets ``Retry-After``: whole seconds, at least 1, until every bucket that
refused it can admit it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ferro import RateLimitError

from ferro_ratelimit.buckets import REQUESTS, TOKENS, Check, Rate

__all__ = ["duration", "limit_headers", "refusal"]

#: Where a refusal names whose limit it was.
_OWNERS = {"api_key": "API key", "ip": "client", "provider": "provider"}
_NAMES = {unit: (f"x-ratelimit-limit-{unit}", f"x-ratelimit-remaining-{unit}",
                 f"x-ratelimit-reset-{unit}") for unit in (REQUESTS, TOKENS)}


def duration(seconds: float) -> str:
    """``seconds`` in Go's duration format, as OpenAI writes reset times, to the
    millisecond: ``0s``, ``250ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    text = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def limit_headers(checks: Sequence[Check], levels: Sequence[float]) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers for buckets ``checks`` at ``levels``."""
    lowest: dict[str, tuple[Rate, float]] = {}
    for check, level in zip(checks, levels, strict=True):
        unit = check.rate.unit
        known = lowest.get(unit)
        if known is None or level < known[1]:
            lowest[unit] = (check.rate, level)
    headers = {}
    for unit, (rate, level) in lowest.items():
        limit, remaining, reset = _NAMES[unit]
        headers[limit] = str(int(rate.capacity))
        headers[remaining] = str(max(0, math.floor(level)))
        headers[reset] = duration(rate.reset(level))
    return headers


def refusal(checks: Sequence[Check], levels: Sequence[float],
            headers: dict[str, str]) -> tuple[RateLimitError, Check]:
    """The 429 for a request refused at ``levels``, and the check whose wait is longest
    (the limit the message names)."""
    wait, worst = max(((c.rate.wait(level), c) for c, level in zip(checks, levels, strict=True)
                       if level < 1), key=lambda pair: pair[0])
    seconds = max(1, math.ceil(wait))
    error = RateLimitError(
        f"rate limit exceeded for {_OWNERS[worst.kind]} {worst.who}: {worst.rate.text}; "
        f"retry after {seconds}s", retryable=True,
        headers={**headers, "Retry-After": str(seconds)})
    return error, worst
