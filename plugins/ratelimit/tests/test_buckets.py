"""Token buckets in memory, on an injected clock: burst, refill, token debits below zero,
all-or-nothing checks over several buckets, and the bound on how many are kept."""

import pytest
from ferro_ratelimit import Limit
from ferro_ratelimit.buckets import Policy
from ferro_ratelimit.memory import MemoryBackend


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def requests(rps, burst=None, bucket="b"):
    return Policy.of(Limit(requests_per_second=rps, burst=burst)).checks(bucket, "ip", "x")


async def admitted(backend, checks, times):
    """How many of ``times`` checks in a row are admitted."""
    return sum([(await backend.take(checks))[0] for _ in range(times)])


def test_a_limit_with_nothing_on_has_no_buckets():
    assert Policy.of(Limit()) is None


def test_burst_defaults_to_the_rate_and_is_at_least_one():
    assert Policy.of(Limit(requests_per_second=20)).requests.capacity == 20
    assert Policy.of(Limit(requests_per_second=0.5)).requests.capacity == 1
    assert Policy.of(Limit(requests_per_second=5, burst=0)).requests.capacity == 5
    assert Policy.of(Limit(requests_per_second=5, burst=12)).requests.capacity == 12


async def test_a_new_bucket_is_full_and_admits_its_burst(clock):
    backend = MemoryBackend(100, clock)
    assert await admitted(backend, requests(2, burst=5), 7) == 5


async def test_an_empty_bucket_refills_at_its_rate_up_to_its_burst(clock):
    backend = MemoryBackend(100, clock)
    checks = requests(2, burst=5)
    await admitted(backend, checks, 5)
    clock.now += 1.0  # two requests' worth
    assert await admitted(backend, checks, 5) == 2
    clock.now += 60.0  # far more than the burst
    assert await admitted(backend, checks, 10) == 5


async def test_the_levels_answered_are_after_the_request(clock):
    backend = MemoryBackend(100, clock)
    assert await backend.take(requests(1, burst=3)) == (True, [2.0])
    clock.now += 0.5
    assert await backend.take(requests(1, burst=3)) == (True, [1.5])


async def test_a_token_bucket_admits_while_it_holds_a_token_and_may_go_negative(clock):
    backend = MemoryBackend(100, clock)
    checks = Policy.of(Limit(tokens_per_minute=600)).checks("t", "ip", "x")  # 10 a second
    verdict = await backend.take(checks)
    assert verdict == (True, [600.0]), "a check takes no tokens"
    debit = Policy.of(Limit(tokens_per_minute=600)).debit("t", 900)
    backend.debit([debit])
    assert (await backend.take(checks)) == (False, [-300.0])
    clock.now += 30.0  # 300 tokens: back at 0, still empty
    assert (await backend.take(checks))[0] is False
    clock.now += 0.125  # a token and a quarter
    assert (await backend.take(checks))[0] is True


async def test_a_refusal_by_one_bucket_takes_from_none(clock):
    backend = MemoryBackend(100, clock)
    wide, narrow = requests(100, bucket="wide"), requests(1, burst=1, bucket="narrow")
    assert (await backend.take(wide + narrow))[0] is True
    assert await backend.take(wide + narrow) == (False, [99.0, 0.0])
    assert await backend.take(wide) == (True, [98.0]), "the refused request took nothing"


async def test_at_most_max_buckets_are_kept_and_the_least_recent_goes_first(clock):
    backend = MemoryBackend(3, clock)
    for name in ("a", "b", "c"):
        await backend.take(requests(1, burst=1, bucket=name))
    await backend.take(requests(1, burst=1, bucket="a"))  # refused, but used recently
    await backend.take(requests(1, burst=1, bucket="d"))
    assert len(backend.buckets) == 3
    assert "b:r" not in backend.buckets
    assert (await backend.take(requests(1, burst=1, bucket="a")))[0] is False, "kept"
    assert (await backend.take(requests(1, burst=1, bucket="b")))[0] is True, "forgotten"


async def test_time_running_backwards_refills_nothing(clock):
    backend = MemoryBackend(100, clock)
    checks = requests(1, burst=1)
    await backend.take(checks)
    clock.now -= 100.0
    assert await backend.take(checks) == (False, [0.0])
