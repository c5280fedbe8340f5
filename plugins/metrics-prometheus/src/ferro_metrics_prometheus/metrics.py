"""``GatewayMetrics``: one app's metrics, and the listener that fills them from each
completed exchange and each change of a circuit breaker's state.

Labels are bounded: ``provider`` is a configured target's name, ``cache`` for a cache hit,
or ``none`` for a request no provider handled, whose ``model`` is ``none`` too (so a
made-up model name in a refused request makes no series); past :data:`MAX_SERIES`
(provider, model) pairs, a new model is counted as ``other``. Error types and rate-limit
key types are bounded the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from ferro import BreakerState, CircuitOpenError, Exchange, Target, UpstreamError, hookimpl
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ferro_metrics_prometheus.labels import CACHE, NONE, OTHER, Children

__all__ = ["BREAKER_STATE", "MAX_SERIES", "GatewayMetrics"]

#: How many (provider, model) pairs, and (provider, error type) pairs, get series of their
#: own; past it a new model or error type is counted as ``other``.
MAX_SERIES = 1000
#: How many rate-limit key types get series of their own.
MAX_KEY_TYPES = 20
#: The name of the circuit-breaker gauge (its samples are filtered at scrape time).
BREAKER_STATE = "gateway_circuit_breaker_state"

#: The older gateway's latency buckets, in seconds.
LATENCY_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
#: What the gateway adds to a request is well under a millisecond when all goes well.
OVERHEAD_BUCKETS = (.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1)
ATTEMPT_BUCKETS = (0, 1, 2, 3, 4, 5, 10)
#: The ``status`` label of ``gateway_requests_total``, by :func:`_status_class`.
STATUSES = ("success", "rejected", "error")
#: The values of ``exchange.metadata["cache"]``.
CACHE_RESULTS = ("hit", "miss", "bypass")

PAIR = ("provider", "model")


class _Series:
    """The children of the per-(provider, model) metrics for one pair; the time to first
    token is made on the pair's first stream, so a pair that never streams shows none."""

    __slots__ = ("cost", "duration", "metrics", "pair", "requests", "tokens_in", "tokens_out",
                 "ttft")

    def __init__(self, metrics: GatewayMetrics, pair: tuple[str, str]) -> None:
        provider, model = self.pair = pair
        self.metrics = metrics
        requests = metrics.requests
        #: Indexed by :func:`_status_class`.
        self.requests = tuple(requests.labels(provider, model, status) for status in STATUSES)
        self.duration = metrics.duration.labels(provider, model)
        self.tokens_in = metrics.tokens_in.labels(provider, model)
        self.tokens_out = metrics.tokens_out.labels(provider, model)
        self.cost = metrics.cost.labels(provider, model)
        self.ttft: Histogram | None = None

    def first_token(self, seconds: float) -> None:
        ttft = self.ttft
        if ttft is None:
            ttft = self.ttft = self.metrics.ttft.labels(*self.pair)
        ttft.observe(seconds)


def _status_class(status: int) -> int:
    """The index in :data:`STATUSES` of an HTTP status: ``success`` below 400, ``rejected``
    for a 4xx (a client that went away, 499, included), ``error`` for a 5xx."""
    return 0 if status < 400 else 1 if status < 500 else 2


def _other_second(pair: tuple[str, str]) -> tuple[str, str]:
    """``pair`` with its unbounded value (a model, an error type) counted as ``other``."""
    return pair[0], OTHER


def _other(_key: str) -> str:
    return OTHER


#: The labels of a request no provider handled.
_UNHANDLED = (NONE, NONE)


class GatewayMetrics:
    """One app's metrics, in ``registry``. Registered with the app's plugin manager, it
    hears that app's exchanges and breaker changes."""

    def __init__(self, registry: CollectorRegistry, max_series: int = MAX_SERIES) -> None:
        self.registry = registry
        r = registry
        self.requests = Counter(
            "gateway_requests_total", "Requests, by the provider that answered or failed "
            "last, the model asked for, and outcome (success; rejected: 4xx; error: 5xx)",
            ["provider", "model", "status"], registry=r)
        self.duration = Histogram(
            "gateway_request_duration_seconds", "Request duration, from arrival to the end "
            "of the reply (a stream's last byte)", PAIR, buckets=LATENCY_BUCKETS, registry=r)
        self.tokens_in = Counter(
            "gateway_tokens_input_total", "Prompt tokens the answers reported", PAIR,
            registry=r)
        self.tokens_out = Counter(
            "gateway_tokens_output_total", "Completion tokens the answers reported", PAIR,
            registry=r)
        self.cost = Counter(
            "gateway_request_cost_usd_total", "What the answers cost in US dollars, where "
            "the price is known", PAIR, registry=r)
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds", "Streamed answers: seconds from arrival "
            "to the first byte of the stream", PAIR, buckets=LATENCY_BUCKETS, registry=r)
        self.provider_errors = Counter(
            "gateway_provider_errors_total", "Failed upstream calls (and streams that failed "
            "after their first chunk), by target and error code", ["provider", "error_type"],
            registry=r)
        self.breaker_state = Gauge(
            BREAKER_STATE, "Circuit breaker state per target: 0 closed, 1 open, 2 half-open",
            ["provider"], registry=r, multiprocess_mode="liveall")
        self.rate_limited = Counter(
            "gateway_rate_limit_rejections_total", "Requests a rate limiter refused, by what "
            "it keys on", ["key_type"], registry=r)
        self.overhead = Histogram(
            "gateway_overhead_seconds", "What the gateway added before the first byte of an "
            "answer, upstream waits aside", buckets=OVERHEAD_BUCKETS, registry=r)
        self.attempts = Histogram(
            "gateway_request_attempts", "Upstream calls per routed request",
            buckets=ATTEMPT_BUCKETS, registry=r)
        self.retries = Counter(
            "gateway_retries_total", "Upstream calls beyond a request's first (retries and "
            "fallbacks)", registry=r)
        cache = Counter(
            "gateway_cache_lookups_total", "Response cache lookups, by result", ["result"],
            registry=r)
        self.cache = {result: cache.labels(result) for result in CACHE_RESULTS}
        self.series: Children[tuple[str, str], _Series] = Children(
            lambda pair: _Series(self, pair), _other_second, max_series)
        self.errors: Children[tuple[str, str], Counter] = Children(
            lambda key: self.provider_errors.labels(*key), _other_second, max_series)
        self.key_types: Children[str, Counter] = Children(
            self.rate_limited.labels, _other, MAX_KEY_TYPES)

    @hookimpl
    def exchange_completed(self, exchange: Exchange) -> None:
        metadata = exchange.metadata
        provider = exchange.provider or (CACHE if metadata.get("cache") == "hit" else "")
        series = self.series((provider, exchange.model or NONE) if provider else _UNHANDLED)
        series.requests[_status_class(exchange.status)].inc()
        series.duration.observe(exchange.duration)
        usage = exchange.usage
        if usage.prompt_tokens:
            series.tokens_in.inc(usage.prompt_tokens)
        if usage.completion_tokens:
            series.tokens_out.inc(usage.completion_tokens)
        if exchange.cost:
            series.cost.inc(exchange.cost)
        ttfb = exchange.ttfb
        if ttfb is not None:
            self.overhead.observe(exchange.overhead or 0.0)
            if exchange.stream:
                series.first_token(ttfb)
        if exchange.targets:
            attempts = exchange.attempts
            self.attempts.observe(attempts)
            if attempts > 1:
                self.retries.inc(attempts - 1)
        if exchange.calls or exchange.error is not None:
            self._count_errors(exchange)
        if metadata:
            cache = self.cache.get(metadata.get("cache"))
            if cache is not None:
                cache.inc()
            key_type = metadata.get("rate_limited")
            if key_type:
                self.key_types(str(key_type)).inc()

    def _count_errors(self, exchange: Exchange) -> None:
        """One per failed upstream call; and the exchange's own failure when no call
        accounts for it: a stream that failed after its first chunk, or a failure the
        exchange reports no calls for."""
        calls = exchange.calls
        for call in calls:
            if call.error is not None:
                self.errors((call.target, call.error)).inc()
        error = exchange.error
        if isinstance(error, UpstreamError | CircuitOpenError) and (
                not calls or calls[-1].error is None):
            self.errors((exchange.provider or NONE, error.code)).inc()

    @hookimpl
    def breaker_state_changed(self, provider: str, new: BreakerState) -> None:
        self.breaker_state.labels(provider).set(new)

    def sync_breakers(self, targets: Iterable[Target]) -> frozenset[str]:
        """Set the gauge to the current state of each target's breaker; the names of the
        targets that have one."""
        names = []
        for target in targets:
            if target.breaker is not None:
                self.breaker_state.labels(target.name).set(target.breaker.state)
                names.append(target.name)
        return frozenset(names)
