"""The x-ratelimit-* headers as OpenAI writes them, Retry-After, and the refusal's message."""

import pytest
from ferro import RateLimitError
from ferro_ratelimit import Limit
from ferro_ratelimit.buckets import Policy
from ferro_ratelimit.headers import duration, limit_headers, refusal


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (-1, "0s"), (0.0004, "0s"), (0.012, "12ms"), (0.25, "250ms"), (1, "1s"),
    (1.5, "1.5s"), (59.999, "59.999s"), (60, "1m0s"), (179.56, "2m59.56s"), (360, "6m0s"),
    (3723, "1h2m3s"), (7200, "2h0m0s"),
])
def test_durations_are_written_as_openai_writes_reset_times(seconds, text):
    assert duration(seconds) == text


def policy(**limit):
    return Policy.of(Limit(**limit))


def test_headers_say_limit_remaining_and_time_to_full_for_requests_and_tokens():
    checks = policy(requests_per_second=2, burst=10, tokens_per_minute=6000).checks(
        "k", "api_key", "team-a")
    assert limit_headers(checks, [6.5, 1200.0]) == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "6",
        "x-ratelimit-reset-requests": "1.75s",  # 3.5 requests at 2 a second
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "1200",
        "x-ratelimit-reset-tokens": "48s",  # 4800 tokens at 100 a second
    }


def test_of_several_buckets_of_one_unit_the_one_with_least_left_is_reported():
    key = policy(requests_per_second=100).checks("key", "api_key", "k")
    ip = policy(requests_per_second=1, burst=5).checks("ip", "ip", "1.2.3.4")
    headers = limit_headers(key + ip, [90.0, 2.0])
    assert (headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"]) \
        == ("5", "2")
    assert "x-ratelimit-limit-tokens" not in headers, "no token limit, no token headers"


def test_remaining_is_never_negative():
    checks = policy(tokens_per_minute=60).checks("t", "ip", "x")
    headers = limit_headers(checks, [-30.0])
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    assert headers["x-ratelimit-reset-tokens"] == "1m30s"


def test_a_refusal_is_a_429_naming_the_limit_with_retry_after_in_whole_seconds():
    checks = policy(requests_per_second=0.4, burst=2).checks("k", "api_key", "team-a")
    error, worst = refusal(checks, [0.2], {"x-ratelimit-remaining-requests": "0"})
    assert isinstance(error, RateLimitError)
    assert (error.status, error.type, error.code) == (429, "rate_limit_error",
                                                      "rate_limit_exceeded")
    assert error.message == ("rate limit exceeded for API key team-a: 0.4 requests per second "
                             "(burst 2); retry after 2s")  # 0.8 requests at 0.4 a second
    assert error.headers == {"x-ratelimit-remaining-requests": "0", "Retry-After": "2"}
    assert worst is checks[0]


def test_retry_after_is_at_least_one_second():
    checks = policy(requests_per_second=1000).checks("ip", "ip", "1.2.3.4")
    error, _ = refusal(checks, [0.999], {})
    assert error.headers["Retry-After"] == "1"


def test_retry_after_waits_for_the_slowest_refusing_bucket():
    requests = policy(requests_per_second=1, burst=1).checks("ip", "ip", "1.2.3.4")
    tokens = policy(tokens_per_minute=60).checks("p", "provider", "openai")
    error, worst = refusal(requests + tokens, [0.5, -9.0], {})
    assert worst.kind == "provider"
    assert error.headers["Retry-After"] == "10"
    assert "provider openai: 60 tokens per minute" in error.message
