import asyncio
import random
from collections import Counter

import pytest
from ferro import (
    ConfigError,
    InvalidRequestError,
    ProviderSettings,
    StrategyConfig,
    UpstreamError,
)
from ferro.testing import StrategyContract, StubOptions, StubProvider, stub_config
from ferro_strategy_least_latency import LeastLatencyOptions, LeastLatencyStrategy
from ferro_strategy_least_latency.measures import Ewma, Median, penalty

MS = 0.001
_real_sleep = asyncio.sleep


class TestLeastLatencyContract(StrategyContract):
    mode = "least-latency"


class FakeClock:
    """Time that passes only while a stub provider waits out its delay (``asyncio.sleep``
    is patched to :meth:`sleep`), so latencies are exact and tests take no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float, result=None):
        self.now += seconds
        await _real_sleep(0)  # still let concurrent requests interleave
        return result


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(asyncio, "sleep", clock.sleep)
    return clock


def stub(name, delay=0.0, **kw):
    return StubProvider(name, ProviderSettings(type="stub", options=StubOptions(delay=delay)),
                        **kw)


def make(*providers, clock, seed=0, **options):
    options = LeastLatencyOptions(**{"explore": 0.0, **options})
    return LeastLatencyStrategy(StrategyConfig(mode="least-latency", options=options),
                                StrategyContract.targets(*providers), clock=clock,
                                rng=random.Random(seed))


async def send(strategy, n=1, **context):
    """Who answered each of ``n`` requests, one after the other."""
    answered = []
    for _ in range(n):
        ctx = StrategyContract.context(**context)
        answer = await StrategyContract.route(strategy, ctx)
        if ctx.stream:
            await answer.close(None)
        answered.append(ctx.provider)
    return answered


async def test_untried_targets_come_first_in_config_order_then_the_fastest(clock):
    a, b, c = stub("a", 5 * MS), stub("b", 1 * MS), stub("c", 3 * MS)
    assert await send(make(a, b, c, clock=clock), 6) == ["a", "b", "c", "b", "b", "b"]


async def test_traffic_leaves_a_target_that_turns_slow_and_returns_when_it_recovers(clock):
    a, b = stub("a", 1 * MS), stub("b", 3 * MS)
    strategy = make(a, b, clock=clock, explore=0.2, seed=7)

    async def share_of_a(n=80):
        answered = await send(strategy, n)
        return Counter(answered[n // 2:])["a"] / (n // 2)  # once settled

    assert await share_of_a() > 0.5
    a.options.delay = 10 * MS
    assert await share_of_a() < 0.5
    a.options.delay = 0.0
    assert await share_of_a() > 0.5


async def test_exploration_tries_another_target_first_at_the_given_rate(clock):
    def strategy(seed, explore):
        return make(stub("a", 1 * MS), stub("b", 5 * MS), clock=clock, explore=explore,
                    seed=seed)

    never = Counter(await send(strategy(1, 0.0), 200))
    assert never["b"] == 1  # its first sample only
    sometimes = await send(strategy(1, 0.25), 200)
    assert 30 <= Counter(sometimes)["b"] <= 70
    assert await send(strategy(1, 0.25), 200) == sometimes  # the seed decides


async def test_a_target_not_tried_for_stale_after_is_tried_first(clock):
    a, b = stub("a", 1 * MS), stub("b", 5 * MS)
    strategy = make(a, b, clock=clock, stale_after=60)
    assert await send(strategy, 4) == ["a", "b", "a", "a"]
    clock.now += 40
    assert await send(strategy) == ["a"]
    clock.now += 25  # b was last tried 65s ago, a 25s ago
    assert await send(strategy, 3) == ["b", "a", "a"]


async def test_concurrent_requests_do_not_all_wait_on_one_untried_target(clock):
    a, b = stub("a", 2 * MS), stub("b", 2 * MS)
    strategy = make(a, b, clock=clock)
    contexts = [StrategyContract.context() for _ in range(2)]
    await asyncio.gather(*(StrategyContract.route(strategy, ctx) for ctx in contexts))
    assert [ctx.provider for ctx in contexts] == ["a", "b"]


async def test_a_failing_target_fails_over_and_goes_last_until_it_recovers(clock):
    a = stub("a", fail_with=UpstreamError("a down", status=503))
    b, c = stub("b", 2 * MS), stub("c", 1 * MS)
    strategy = make(a, b, c, clock=clock, stale_after=60)
    assert await send(strategy, 4) == ["b", "c", "c", "c"]
    assert a.calls == 1
    a.fail_with = None
    clock.now += 61  # every target is due a fresh sample: config order once more
    assert await send(strategy, 5) == ["a", "b", "c", "a", "a"]


async def test_the_clients_own_mistake_is_no_failure_of_the_target(clock):
    a, b = stub("a", 1 * MS), stub("b", 5 * MS)
    strategy = make(a, b, clock=clock)
    await send(strategy, 2)
    a.fail_with = InvalidRequestError("bad request")
    with pytest.raises(InvalidRequestError):
        await send(strategy)
    a.fail_with = None
    assert await send(strategy, 2) == ["a", "a"]
    assert b.calls == 1


def test_a_failure_counts_as_twice_the_worst_of_its_time_and_the_estimates():
    assert penalty(0.010, [0.200, None, 0.050]) == pytest.approx(0.400)
    assert penalty(0.500, [0.200]) == pytest.approx(1.000)
    assert penalty(0.003, []) == pytest.approx(0.006)


def test_ewma_moves_alpha_of_the_way_and_p50_is_the_median_of_the_window():
    ewma = Ewma(0.5)
    for sample in (10, 20):
        ewma.add(sample)
    assert ewma.estimate == 15
    median = Median(3)
    for sample in (1, 100, 2):
        median.add(sample)
    assert median.estimate == 2
    for sample in (3, 4):
        median.add(sample)
    assert median.estimate == 3  # 1 and 100 have left the window


@pytest.mark.parametrize(("measure", "after_spike"), [("ewma", "b"), ("p50", "a")])
async def test_one_slow_answer_moves_ewma_but_not_p50(clock, measure, after_spike):
    a, b = stub("a", 1 * MS), stub("b", 3 * MS)
    strategy = make(a, b, clock=clock, measure=measure, alpha=0.5, window=5)
    assert await send(strategy, 4) == ["a", "b", "a", "a"]
    a.options.delay = 20 * MS
    await send(strategy)
    a.options.delay = 1 * MS
    assert await send(strategy) == [after_spike]


async def test_streams_are_measured_apart_from_whole_answers(clock):
    a, b = stub("a", 5 * MS), stub("b", 1 * MS)
    strategy = make(a, b, clock=clock)
    assert await send(strategy, 3) == ["a", "b", "b"]
    assert await send(strategy, 3, stream=True) == ["a", "b", "b"]


async def test_latencies_are_kept_for_at_most_max_models_keys(clock):
    strategy = make(stub("a"), stub("b"), clock=clock, max_models=5)
    for n in range(50):
        await send(strategy, model=f"m{n}")
    assert len(strategy._records) == 5
    assert ("chat", "m49", False) in strategy._records
    assert ("chat", "m0", False) not in strategy._records


@pytest.mark.parametrize(("options", "field"), [
    ({"measure": "p90"}, "measure"),
    ({"alpha": 0}, "alpha"),
    ({"explore": 1.5}, "explore"),
    ({"window": 0}, "window"),
    ({"max_models": 0}, "max_models"),
    ({"stale_after": "0s"}, "stale_after"),
    ({"fastest": True}, "fastest"),
])
def test_bad_options_name_their_key(ferro_app, stub_plugins, options, field):
    config = stub_config("a", "b", strategy="least-latency")
    config["strategy"]["options"] = options
    with pytest.raises(ConfigError, match=rf"strategy\.options\.{field}"):
        ferro_app(config, pm=stub_plugins)
