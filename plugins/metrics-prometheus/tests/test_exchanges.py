"""Each kind of completed exchange, built by hand, as the metrics count it."""

import pytest
from ferro import (
    BreakerState,
    Call,
    CircuitOpenError,
    Exchange,
    InvalidRequestError,
    RejectedError,
    UpstreamConnectionError,
    UpstreamError,
    Usage,
)
from ferro_metrics_prometheus import GatewayMetrics
from prometheus_client import CollectorRegistry


@pytest.fixture
def metrics():
    return GatewayMetrics(CollectorRegistry())


def exchange(**fields):
    """An exchange answered by target ``a`` for model ``m``, unless ``fields`` say other."""
    values = {"request_id": "r", "operation": "chat", "model": "m", "provider": "a",
              "stream": False, "status": 200, "started": 0.0, "duration": 0.2,
              "targets": ["a"], "attempts": 1}
    return Exchange(**{**values, **fields})


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0.0


def requests(metrics, provider="a", model="m", status="success"):
    return value(metrics, "gateway_requests_total", provider=provider, model=model,
                 status=status)


def series(metrics, name):
    """The label sets of ``name``'s samples that have a value."""
    return [s.labels for family in metrics.registry.collect() for s in family.samples
            if s.name == name and s.value]


def test_an_answer_counts_its_request_duration_tokens_cost_and_overhead(metrics):
    metrics.exchange_completed(exchange(
        usage=Usage(prompt_tokens=7, completion_tokens=3, total_tokens=10), cost=0.25,
        ttfb=0.15, calls=[Call("a", start=0.01, duration=0.1)]))

    assert requests(metrics) == 1
    assert value(metrics, "gateway_request_duration_seconds_count", provider="a",
                 model="m") == 1
    assert value(metrics, "gateway_request_duration_seconds_sum", provider="a",
                 model="m") == pytest.approx(0.2)
    assert value(metrics, "gateway_tokens_input_total", provider="a", model="m") == 7
    assert value(metrics, "gateway_tokens_output_total", provider="a", model="m") == 3
    assert value(metrics, "gateway_request_cost_usd_total", provider="a",
                 model="m") == 0.25
    assert value(metrics, "gateway_overhead_seconds_count") == 1
    assert value(metrics, "gateway_overhead_seconds_sum") == pytest.approx(0.05)
    assert value(metrics, "gateway_request_attempts_sum") == 1
    assert value(metrics, "gateway_retries_total") == 0
    assert series(metrics, "gateway_time_to_first_token_seconds_count") == []
    assert series(metrics, "gateway_provider_errors_total") == []


def test_a_stream_observes_its_time_to_first_token(metrics):
    metrics.exchange_completed(exchange(stream=True, ttfb=0.3, duration=1.5,
                                        usage=Usage(prompt_tokens=4, completion_tokens=9)))

    assert value(metrics, "gateway_time_to_first_token_seconds_count", provider="a",
                 model="m") == 1
    assert value(metrics, "gateway_time_to_first_token_seconds_sum", provider="a",
                 model="m") == pytest.approx(0.3)
    assert value(metrics, "gateway_time_to_first_token_seconds_bucket", provider="a",
                 model="m", le="0.25") == 0
    assert value(metrics, "gateway_time_to_first_token_seconds_bucket", provider="a",
                 model="m", le="0.5") == 1
    assert value(metrics, "gateway_tokens_output_total", provider="a", model="m") == 9


def test_retries_and_fallbacks_count_every_failed_call_and_every_call_past_the_first(
        metrics):
    calls = [Call("a", 0.0, 0.1, 500, "upstream_error"),
             Call("a", 0.2, 0.1, 500, "upstream_error"),
             Call("b", 0.4, 0.1)]
    metrics.exchange_completed(exchange(provider="b", targets=["a", "b"], attempts=3,
                                        calls=calls, ttfb=0.6))

    assert requests(metrics, provider="b") == 1
    assert value(metrics, "gateway_provider_errors_total", provider="a",
                 error_type="upstream_error") == 2
    assert series(metrics, "gateway_provider_errors_total") == [
        {"provider": "a", "error_type": "upstream_error"}]
    assert value(metrics, "gateway_retries_total") == 2
    assert value(metrics, "gateway_request_attempts_bucket", le="2.0") == 0
    assert value(metrics, "gateway_request_attempts_bucket", le="3.0") == 1
    assert value(metrics, "gateway_overhead_seconds_sum") == pytest.approx(0.3)


def test_a_request_every_target_failed_counts_each_call_once(metrics):
    error = CircuitOpenError("circuit breaker open for b")
    calls = [Call("a", 0.0, 0.1, 503, "upstream_unavailable"),
             Call("b", 0.1, 0.0, 503, "circuit_open")]
    metrics.exchange_completed(exchange(status=503, error=error, targets=["a", "b"],
                                        calls=calls))

    assert requests(metrics, status="error") == 1
    assert value(metrics, "gateway_provider_errors_total", provider="a",
                 error_type="upstream_unavailable") == 1
    assert value(metrics, "gateway_provider_errors_total", provider="b",
                 error_type="circuit_open") == 1
    assert len(series(metrics, "gateway_provider_errors_total")) == 2
    assert value(metrics, "gateway_overhead_seconds_count") == 0


def test_a_stream_that_fails_after_its_first_chunk_is_a_provider_error(metrics):
    error = UpstreamConnectionError("a closed the connection", provider="a",
                                    code="upstream_disconnected")
    metrics.exchange_completed(exchange(stream=True, status=502, error=error, ttfb=0.1,
                                        calls=[Call("a", 0.0, 0.1)]))

    assert requests(metrics, status="error") == 1
    assert value(metrics, "gateway_provider_errors_total", provider="a",
                 error_type="upstream_disconnected") == 1


def test_a_failure_reported_without_calls_counts_from_the_exchange_error(metrics):
    error = UpstreamError("a: overloaded", status=529, provider="a")
    metrics.exchange_completed(exchange(status=529, error=error))

    assert value(metrics, "gateway_provider_errors_total", provider="a",
                 error_type="upstream_overloaded") == 1


@pytest.mark.parametrize("error", [
    RejectedError("blocked word detected: secret", code="content_blocked"),
    InvalidRequestError("the client closed the connection", code="client_closed", status=499),
])
def test_failures_of_the_callers_own_are_no_provider_errors(metrics, error):
    metrics.exchange_completed(exchange(status=error.status, error=error,
                                        calls=[Call("a", 0.0, 0.1)]))

    assert requests(metrics, status="rejected") == 1
    assert series(metrics, "gateway_provider_errors_total") == []


def test_a_request_refused_before_routing_is_provider_none_model_none(metrics):
    error = InvalidRequestError("no provider supports model: made-up-1",
                                code="model_not_found")
    metrics.exchange_completed(exchange(provider="", model="made-up-1", status=400,
                                        error=error, targets=[], attempts=0))

    assert requests(metrics, provider="none", model="none", status="rejected") == 1
    assert all("made-up-1" not in labels.values()
               for labels in series(metrics, "gateway_requests_total"))
    assert value(metrics, "gateway_request_attempts_count") == 0
    assert series(metrics, "gateway_provider_errors_total") == []


@pytest.mark.parametrize(("status", "outcome"), [
    (200, "success"), (304, "success"), (400, "rejected"), (401, "rejected"),
    (413, "rejected"), (429, "rejected"), (499, "rejected"), (500, "error"), (502, "error"),
    (504, "error")])
def test_the_status_label_is_success_rejected_or_error(metrics, status, outcome):
    metrics.exchange_completed(exchange(status=status))

    assert series(metrics, "gateway_requests_total") == [
        {"provider": "a", "model": "m", "status": outcome}]


def test_cache_lookups_count_by_result_and_an_unknown_result_is_ignored(metrics):
    for result in ("hit", "miss", "miss", "bypass", "stale"):
        metrics.exchange_completed(exchange(metadata={"cache": result}))

    counted = {labels["result"]: value(metrics, "gateway_cache_lookups_total", **labels)
               for labels in series(metrics, "gateway_cache_lookups_total")}
    assert counted == {"hit": 1, "miss": 2, "bypass": 1}


def test_rate_limit_rejections_count_by_key_type(metrics):
    for key_type in ("api_key", "ip", "ip", "provider"):
        metrics.exchange_completed(exchange(provider="", status=429,
                                            metadata={"rate_limited": key_type}))
    metrics.exchange_completed(exchange())

    assert [value(metrics, "gateway_rate_limit_rejections_total", key_type=k)
            for k in ("api_key", "ip", "provider")] == [1, 2, 1]
    assert requests(metrics, provider="none", model="none", status="rejected") == 4


def test_models_past_the_bound_are_counted_as_other():
    metrics = GatewayMetrics(CollectorRegistry(), max_series=3)
    for model in ("m1", "m2", "m3", "m4", "m5", "m4"):
        metrics.exchange_completed(exchange(model=model))
    metrics.exchange_completed(exchange(provider="b", model="m6"))

    assert sorted((s["provider"], s["model"]) for s in
                  series(metrics, "gateway_requests_total")) == [
        ("a", "m1"), ("a", "m2"), ("a", "m3"), ("a", "other"), ("b", "other")]
    assert requests(metrics, model="other") == 3


def test_error_types_past_the_bound_are_counted_as_other():
    metrics = GatewayMetrics(CollectorRegistry(), max_series=2)
    calls = [Call("a", 0.0, 0.1, 500, f"code_{i}") for i in range(4)]
    metrics.exchange_completed(exchange(calls=calls, attempts=4))

    assert sorted(s["error_type"] for s in series(metrics, "gateway_provider_errors_total")) \
        == ["code_0", "code_1", "other"]
    assert value(metrics, "gateway_provider_errors_total", provider="a",
                 error_type="other") == 2


def test_a_breaker_change_sets_the_gauge(metrics):
    metrics.breaker_state_changed("a", BreakerState.OPEN)
    assert value(metrics, "gateway_circuit_breaker_state", provider="a") == 1
    metrics.breaker_state_changed("a", BreakerState.HALF_OPEN)
    assert value(metrics, "gateway_circuit_breaker_state", provider="a") == 2
    metrics.breaker_state_changed("a", BreakerState.CLOSED)
    assert metrics.registry.get_sample_value("gateway_circuit_breaker_state",
                                             {"provider": "a"}) == 0


def test_a_cache_hit_is_counted_under_the_cache_and_its_model(metrics):
    metrics.exchange_completed(exchange(provider="", model="gpt-4o", cost=0.0,
                                        metadata={"cache": "hit"}))
    metrics.exchange_completed(exchange(provider="", model="made-up", status=400,
                                        metadata={"cache": "miss"}))
    assert value(metrics, "gateway_requests_total", provider="cache", model="gpt-4o",
                 status="success") == 1
    assert value(metrics, "gateway_requests_total", provider="none", model="none",
                 status="rejected") == 1
