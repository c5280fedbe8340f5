import random
from collections import Counter

import pytest
from ferro import ConfigError, InvalidRequestError, StrategyConfig, UpstreamError, parse_config
from ferro.testing import StrategyContract, StubProvider, stub_config
from ferro_strategy_loadbalance import LoadBalanceStrategy, weighted_order
from hypothesis import given, settings
from hypothesis import strategies as st


class TestLoadBalanceContract(StrategyContract):
    mode = "loadbalance"


def make(*providers, weights=None, attempts=1, rng=None):
    """A loadbalance strategy over ``providers``, weighted by ``weights`` (default 1 each)."""
    targets = StrategyContract.targets(*providers, attempts=attempts)
    for target, weight in zip(targets, weights or [1] * len(targets), strict=True):
        target.weight = weight
    return LoadBalanceStrategy(StrategyConfig(mode="loadbalance"), targets, rng=rng)


async def route(strategy, ctx=None):
    ctx = ctx or StrategyContract.context()
    return ctx, await StrategyContract.route(strategy, ctx)


async def picked_name(target):
    """An ``attempt`` that answers with the target's name, to count picks without a call."""
    return target.name


# --- the split --------------------------------------------------------------------------------


async def test_a_90_10_split_holds_over_10000_picks_with_module_randomness():
    strategy = make(StubProvider("a"), StubProvider("b"), weights=[9, 1])
    picks = Counter([await strategy.route(StrategyContract.context(), picked_name)
                     for _ in range(10_000)])
    assert set(picks) == {"a", "b"}
    assert 0.88 <= picks["a"] / 10_000 <= 0.92


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(min_value=0, max_value=20), min_size=2, max_size=6)
       .filter(lambda ws: sum(ws) > 0))
def test_first_picks_follow_the_weights(weights):
    targets = StrategyContract.targets(*(StubProvider(f"t{i}") for i in range(len(weights))))
    for target, weight in zip(targets, weights, strict=True):
        target.weight = weight
    draw = random.Random(1234).random
    firsts = Counter(next(weighted_order(targets, draw)).name for _ in range(10_000))
    for target, weight in zip(targets, weights, strict=True):
        share = weight / sum(weights)
        assert abs(firsts[target.name] / 10_000 - share) <= 0.02, (weights, firsts)
        if weight == 0:
            assert firsts[target.name] == 0


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=8), st.randoms())
def test_an_order_is_every_target_once_with_standbys_last_in_config_order(weights, rng):
    targets = StrategyContract.targets(*(StubProvider(f"t{i}") for i in range(len(weights))))
    for target, weight in zip(targets, weights, strict=True):
        target.weight = weight
    order = list(weighted_order(targets, rng.random))
    assert sorted(t.name for t in order) == sorted(t.name for t in targets)
    weighted = sum(1 for w in weights if w > 0)
    assert all(t.weight > 0 for t in order[:weighted])
    assert order[weighted:] == [t for t in targets if t.weight == 0]


# --- failing over -----------------------------------------------------------------------------


async def test_a_retryable_failure_fails_over_to_the_other_target():
    a = StubProvider("a", fail_with=UpstreamError("down", status=503))
    b = StubProvider("b")
    strategy = make(a, b, rng=random.Random(3))
    orders = Counter()
    for _ in range(50):
        ctx, response = await route(strategy)
        assert response.provider == "b"
        orders[tuple(ctx.tried)] += 1
    assert set(orders) == {("b",), ("a", "b")}
    assert (a.calls, b.calls) == (orders[("a", "b")], 50)


async def test_each_target_is_tried_once_before_the_last_failure_is_raised():
    providers = [StubProvider(n, fail_with=UpstreamError(f"{n} down", status=503))
                 for n in ("a", "b", "c")]
    ctx = StrategyContract.context()
    with pytest.raises(UpstreamError) as info:
        await route(make(*providers, weights=[5, 3, 1], attempts=2), ctx)
    assert sorted(ctx.tried) == ["a", "b", "c"]
    assert info.value.message == f"{ctx.tried[-1]} down"
    assert [p.calls for p in providers] == [2, 2, 2]


async def test_a_client_error_is_raised_without_failing_over():
    a = StubProvider("a", fail_with=InvalidRequestError("bad request"))
    b = StubProvider("b")
    strategy = make(a, b, rng=random.Random(5))
    outcomes = Counter()
    for _ in range(50):
        ctx = StrategyContract.context()
        try:
            await route(strategy, ctx)
        except InvalidRequestError:
            assert ctx.tried == ["a"]
            outcomes["refused"] += 1
        else:
            assert ctx.tried == ["b"]
            outcomes["answered"] += 1
    assert outcomes["refused"] > 0 and outcomes["answered"] > 0
    assert (a.calls, b.calls) == (outcomes["refused"], outcomes["answered"])


# --- standby targets --------------------------------------------------------------------------


async def test_a_standby_gets_no_traffic_while_a_weighted_target_answers():
    a, standby = StubProvider("a"), StubProvider("standby")
    strategy = make(a, standby, weights=[1, 0])
    for _ in range(200):
        await route(strategy)
    assert (a.calls, standby.calls) == (200, 0)


async def test_standbys_are_used_in_config_order_after_every_weighted_target_failed():
    down = UpstreamError("down", status=503)
    a, b, c, d = (StubProvider("a", fail_with=down), StubProvider("b", fail_with=down),
                  StubProvider("c"), StubProvider("d", fail_with=down))
    ctx, response = await route(make(a, b, c, d, weights=[2, 0, 0, 1]))
    assert response.provider == "c"
    assert sorted(ctx.tried[:2]) == ["a", "d"]
    assert ctx.tried[2:] == ["b", "c"]


async def test_a_standby_answers_when_no_weighted_target_serves_the_model():
    class Picky(StubProvider):
        def supports_model(self, model):
            return False

    weighted, standby = Picky("weighted"), StubProvider("standby")
    _, response = await route(make(weighted, standby, weights=[1, 0]))
    assert response.provider == "standby"
    assert weighted.calls == 0


# --- configuration ----------------------------------------------------------------------------

ALL_ZERO = """\
strategy: {mode: loadbalance}
providers:
  a: {type: stub}
  b: {type: stub}
targets:
  - {virtual_key: a, weight: 0}
  - {virtual_key: b, weight: 0}
"""


def test_all_zero_weights_are_a_located_config_error(ferro_app, stub_plugins):
    config = parse_config(ALL_ZERO, "gw.yaml", env={})
    with pytest.raises(ConfigError, match=r"^gw\.yaml:5: targets: loadbalance needs at least "
                                          r"one target with a positive weight"):
        ferro_app(config, pm=stub_plugins)


def test_one_positive_weight_next_to_zeros_is_accepted(ferro_app, stub_plugins):
    config = parse_config(ALL_ZERO.replace("b, weight: 0", "b, weight: 0.5"), "gw.yaml", env={})
    assert ferro_app(config, pm=stub_plugins) is not None


# --- end to end -------------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "hi"}]


async def test_chat_streams_and_embeddings_over_a_real_socket(openai_client, stub_plugins):
    client = await openai_client(stub_config("a", "b", strategy="loadbalance"), pm=stub_plugins)

    answered_by = set()
    for _ in range(20):
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        reply = raw.parse()
        assert reply.choices[0].message.content == "stub answer"
        assert reply.model_extra["provider"] == raw.headers["x-gateway-provider"]
        answered_by.add(raw.headers["x-gateway-provider"])
    assert answered_by == {"a", "b"}

    raw = await client.chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, stream=True)
    assert raw.headers["x-gateway-provider"] in ("a", "b")
    text = ""
    async for chunk in raw.parse():
        text += "".join(choice.delta.content or "" for choice in chunk.choices)
    assert text.strip() == "stub answer"

    raw = await client.embeddings.with_raw_response.create(model="m", input=["x", "y"])
    embeddings = raw.parse()
    assert [e.embedding for e in embeddings.data] == [[1.0] * 3, [2.0] * 3]
    assert raw.headers["x-gateway-provider"] in ("a", "b")
