"""The webhooks' options, as written under the ``webhooks`` entry's ``config``.

The kernel structures them into :class:`Options` and locates a wrong key or value in the
file; the validators here add what a type cannot say (an http(s) URL, a secret that is not
empty, known event types and metrics, thresholds that make sense).
"""

from __future__ import annotations

from typing import Any

import attrs
import yarl
from ferro import Duration

from ferro_webhooks.events import EVENT_TYPES

__all__ = ["METRICS", "Delivery", "Endpoint", "Options", "RetryOptions", "Threshold"]

#: What a threshold can watch: the share of requests that failed, the 95th percentile of
#: request durations or of times to the first byte (seconds), and the spend (US dollars).
METRICS = ("error_rate", "p95_latency", "p95_ttfb", "spend")


def _http_url(_inst: Any, attr: attrs.Attribute, value: str) -> None:
    try:
        url = yarl.URL(value)
    except (TypeError, ValueError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"must be an http:// or https:// URL (got {value!r})", attr)


def _not_empty(_inst: Any, attr: attrs.Attribute, value: str) -> None:
    if not value.strip():
        raise ValueError("must not be empty: every POST is signed with it (write "
                         "${SOME_ENV_VAR} to read it from the environment)", attr)


def _event_types(_inst: Any, attr: attrs.Attribute, value: list[str]) -> None:
    if not value:
        raise ValueError(f"must list at least one event type ({', '.join(EVENT_TYPES)})", attr)
    for event_type in value:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r} (expected some of: "
                             f"{', '.join(EVENT_TYPES)})", attr)


def _metric(_inst: Any, attr: attrs.Attribute, value: str) -> None:
    if value not in METRICS:
        raise ValueError(f"must be one of {', '.join(METRICS)} (got {value!r})", attr)


def _above(inst: Threshold, attr: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValueError(f"must not be negative (got {value:g})", attr)
    if inst.metric == "error_rate" and value >= 1:
        raise ValueError(f"is a share of requests for error_rate: below 1 (got {value:g})",
                         attr)


def _recover_below(inst: Threshold, attr: attrs.Attribute, value: float | None) -> None:
    if value is not None and not 0 <= value <= inst.above:
        raise ValueError(f"must be between 0 and above ({inst.above:g}) (got {value:g})", attr)


def _positive(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"must be positive (got {value:g})", attr)


def _fraction(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"must be between 0 and 1 (got {value:g})", attr)


def _at_least_one(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if value < 1:
        raise ValueError(f"must be at least 1 (got {value:g})", attr)


@attrs.define
class Endpoint:
    """A URL events are posted to, the secret their signature is made with, and the event
    types it is sent (all by default)."""

    url: str = attrs.field(validator=_http_url)
    secret: str = attrs.field(validator=_not_empty, repr=False)
    events: list[str] = attrs.field(factory=lambda: list(EVENT_TYPES), validator=_event_types)


@attrs.define
class Threshold:
    """``metric`` over the last ``window`` seconds: ``threshold.crossed`` once it goes above
    ``above``, ``threshold.recovered`` once it is back at or below ``recover_below``
    (default: ``above``). ``error_rate`` and the percentiles wait for ``min_requests``
    requests in the window before they say anything."""

    metric: str = attrs.field(validator=_metric)
    above: float = attrs.field(validator=_above)
    window: Duration = attrs.field(default=Duration(60.0), validator=_positive)
    min_requests: int = attrs.field(default=10, validator=_at_least_one)
    recover_below: float | None = attrs.field(default=None, validator=_recover_below)
    #: What the events call it (default: ``<metric> above <above>``).
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.metric} above {self.above:g}"

    @property
    def recovered_at(self) -> float:
        return self.above if self.recover_below is None else self.recover_below


@attrs.define
class RetryOptions:
    """How a POST is retried after a connection error, a timeout, a 429 or a 5xx: at most
    ``attempts`` tries in all, waiting ``backoff x factor^(n-1)`` before retry ``n``, capped
    at ``max_backoff``, less up to ``jitter`` of it at random. An endpoint's
    ``Retry-After`` replaces the wait, up to ``max_backoff``."""

    attempts: int = attrs.field(default=5, validator=_at_least_one)
    backoff: Duration = Duration(1.0)
    factor: float = attrs.field(default=2.0, validator=_at_least_one)
    max_backoff: Duration = Duration(30.0)
    jitter: float = attrs.field(default=0.5, validator=_fraction)


@attrs.define
class Delivery:
    """How events are sent: each endpoint has a queue of at most ``queue_size`` events (an
    event past it is dropped and counted) and ``senders`` tasks posting from it, each POST
    given ``timeout`` seconds; at shutdown, what is queued is sent for at most
    ``flush_timeout`` seconds."""

    queue_size: int = attrs.field(default=1000, validator=_at_least_one)
    senders: int = attrs.field(default=2, validator=_at_least_one)
    timeout: Duration = attrs.field(default=Duration(5.0), validator=_positive)
    flush_timeout: Duration = Duration(5.0)
    retry: RetryOptions = attrs.Factory(RetryOptions)


def _endpoints(_inst: Any, attr: attrs.Attribute, value: list[Endpoint]) -> None:
    if not value:
        raise ValueError("must list at least one endpoint ({url, secret, events})", attr)


@attrs.define
class Options:
    endpoints: list[Endpoint] = attrs.field(validator=_endpoints)
    #: Whether a request refused as the client's mistake (a 4xx) counts as failed too, for
    #: ``request.failed`` and for ``error_rate``; by default only 5xx answers do.
    client_errors: bool = False
    thresholds: list[Threshold] = attrs.Factory(list)
    #: How often thresholds are checked.
    check_every: Duration = attrs.field(default=Duration(1.0), validator=_positive)
    delivery: Delivery = attrs.Factory(Delivery)
