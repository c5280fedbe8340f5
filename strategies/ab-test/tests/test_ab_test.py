from collections import Counter

import pytest
from ferro import (
    ChatRequest,
    Identity,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderSettings,
    RequestContext,
    StrategyConfig,
    UpstreamError,
)
from ferro.testing import StrategyContract, StubProvider
from ferro_strategy_ab_test import ARM_HEADER, ABTestStrategy, Arm, Options
from ferro_strategy_ab_test.assignment import point_of


class TestABTestContract(StrategyContract):
    """The contract's stream test builds its strategy over target "a" alone, so the arms
    name only "a"; the second arm routes by model over whatever targets there are."""

    mode = "ab-test"

    def strategy_config(self) -> StrategyConfig:
        return StrategyConfig(mode=self.mode, options=Options(arms=[
            Arm("pinned", 50, target="a"), Arm("by-model", 50, model="m")], fallback=True))


HALVES = [Arm("A", 50, target="a"), Arm("B", 50, target="b")]


def make(*providers, arms=HALVES, **options):
    return ABTestStrategy(StrategyConfig(mode="ab-test", options=Options(arms=arms, **options)),
                          StrategyContract.targets(*providers))


def context(*, key=None, user=None, model="m"):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if user is not None:
        body["user"] = user
    identity = Identity(key_id=key) if key is not None else None
    return RequestContext(ChatRequest(body), "test-request", identity)


async def routed(strategy, ctx):
    """Route ``ctx`` for real (through the kernel's attempt); the answering target's name."""
    return (await StrategyContract.route(strategy, ctx)).provider


# --- assignment ----------------------------------------------------------------------------------


async def test_the_same_key_id_always_gets_the_same_arm_and_target():
    a, b = StubProvider("a"), StubProvider("b")
    strategy = make(a, b)
    for n in range(20):
        seen = set()
        for _ in range(25):
            ctx = context(key=f"key-{n}")
            target = await routed(strategy, ctx)
            seen.add((ctx.metadata["ab_arm"], ctx.reply_headers[ARM_HEADER], target))
        assert len(seen) == 1
        arm, header, target = seen.pop()
        assert header == arm
        assert target == {"A": "a", "B": "b"}[arm]
    assert a.calls and b.calls


async def test_many_callers_spread_over_the_arms_by_their_percents():
    providers = [StubProvider(n) for n in ("a", "b", "c")]
    strategy = make(*providers, arms=[Arm("A", 50, target="a"), Arm("B", 30, target="b"),
                                      Arm("C", 20, target="c"), Arm("off", 0, target="a")])
    arms = Counter()
    for n in range(2_000):
        ctx = context(key=f"caller-{n}")
        await routed(strategy, ctx)
        arms[ctx.metadata["ab_arm"]] += 1
    assert set(arms) == {"A", "B", "C"}
    for arm, percent in (("A", 50), ("B", 30), ("C", 20)):
        assert abs(arms[arm] / 2_000 - percent / 100) <= 0.04, arms
    assert [p.calls for p in providers] == [arms["A"], arms["B"], arms["C"]]


async def test_key_stickiness_follows_the_key_and_falls_back_to_the_user():
    strategy = make(StubProvider("a"), StubProvider("b"))
    with_key = set()
    for n in range(30):
        ctx = context(key="one-key", user=f"user-{n}")
        await routed(strategy, ctx)
        with_key.add(ctx.metadata["ab_arm"])
    assert len(with_key) == 1
    without_key = Counter()
    for n in range(30):
        ctx = context(user=f"user-{n % 3}")
        await routed(strategy, ctx)
        without_key[(n % 3, ctx.metadata["ab_arm"])] += 1
    assert sorted(without_key.values()) == [10, 10, 10]


async def test_user_stickiness_ignores_the_key():
    strategy = make(StubProvider("a"), StubProvider("b"), sticky="user")
    arms = set()
    for n in range(30):
        ctx = context(key=f"key-{n}", user="alice")
        await routed(strategy, ctx)
        arms.add(ctx.metadata["ab_arm"])
    assert len(arms) == 1


@pytest.mark.parametrize(("sticky", "key", "user"), [
    ("none", "one-key", "alice"),  # stickiness off
    ("key", None, None),           # no sticky id
    ("user", "one-key", None),     # no user on the request
])
async def test_without_a_sticky_id_each_request_is_drawn_at_random(sticky, key, user):
    strategy = make(StubProvider("a"), StubProvider("b"), sticky=sticky)
    arms = Counter()
    for _ in range(1_000):
        ctx = context(key=key, user=user)
        await routed(strategy, ctx)
        arms[ctx.metadata["ab_arm"]] += 1
    assert 0.42 <= arms["A"] / 1_000 <= 0.58, arms


def test_the_point_is_a_stable_hash_of_the_experiment_and_the_id():
    # pinned: any process, any run (Python's hash() would differ between processes)
    assert point_of("ab", "alice") == pytest.approx(11.573657577059926, abs=1e-12)
    assert all(0 <= point_of("ab", f"user-{n}") < 100 for n in range(1_000))


def test_the_experiment_name_salts_the_assignment():
    first = make(StubProvider("a"), StubProvider("b"), experiment="first").assigner
    second = make(StubProvider("a"), StubProvider("b"), experiment="second").assigner
    moved = sum(first.assign(context(key=f"k{n}")) != second.assign(context(key=f"k{n}"))
                for n in range(200))
    assert 60 <= moved <= 140  # about half of the callers change arm


async def test_the_arm_and_experiment_are_recorded_in_the_metadata():
    ctx = context(key="k")
    await routed(make(StubProvider("a"), StubProvider("b"), experiment="exp-7"), ctx)
    assert ctx.metadata == {"ab_arm": ctx.reply_headers[ARM_HEADER], "ab_experiment": "exp-7"}


# --- routing ------------------------------------------------------------------------------


def arms_for(point_arm: Arm, other: Arm):
    """Two arms where key "k" lands in ``point_arm``."""
    first = point_of("ab", "k") < 50
    return [point_arm, other] if first else [other, point_arm]


async def test_a_model_arm_rewrites_the_model_and_routes_by_the_new_one():
    small = StubProvider("small", ProviderSettings(type="stub", models=["m", "small-model"]))
    big = StubProvider("big", ProviderSettings(type="stub", models=["m", "big-model"]))
    strategy = make(small, big, arms=arms_for(Arm("big", 50, model="big-model"),
                                              Arm("small", 50, model="small-model")))
    ctx = context(key="k")
    response = await StrategyContract.route(strategy, ctx)
    assert ctx.request.body["model"] == "big-model"
    assert (response.provider, response.body["model"]) == ("big", "big-model")
    assert [r.model for r in big.requests] == ["big-model"]
    assert small.calls == 0


async def test_a_model_only_arm_falls_back_along_the_targets_in_order():
    a = StubProvider("a", fail_with=UpstreamError("down", status=503))
    b = StubProvider("b")
    arm = Arm("new", 50, model="m2")
    strategy = make(a, b, arms=arms_for(arm, Arm("old", 50, target="a")))
    ctx = context(key="k")
    assert await routed(strategy, ctx) == "b"
    assert ctx.tried == ["a", "b"]


async def test_an_arm_with_a_target_and_a_model_sends_that_model_to_that_target():
    a, b = StubProvider("a"), StubProvider("b")
    strategy = make(a, b, arms=arms_for(Arm("B", 50, target="b", model="m-b"),
                                        Arm("A", 50, target="a")))
    response = await StrategyContract.route(strategy, context(key="k"))
    assert (response.provider, response.body["model"], a.calls) == ("b", "m-b", 0)


async def test_a_failing_target_is_not_left_without_fallback():
    a = StubProvider("a", fail_with=UpstreamError("down", status=503))
    b = StubProvider("b")
    strategy = make(a, b, arms=arms_for(Arm("A", 50, target="a"), Arm("B", 50, target="b")))
    with pytest.raises(UpstreamError, match="down"):
        await routed(strategy, context(key="k"))
    assert (a.calls, b.calls) == (1, 0)


async def test_a_failing_target_falls_back_to_the_others_with_fallback():
    a = StubProvider("a", fail_with=UpstreamError("down", status=503))
    b = StubProvider("b")
    strategy = make(a, b, arms=arms_for(Arm("A", 50, target="a"), Arm("B", 50, target="b")),
                    fallback=True)
    ctx = context(key="k")
    assert await routed(strategy, ctx) == "b"
    assert ctx.tried == ["a", "b"]
    assert ctx.metadata["ab_arm"] == "A"


async def test_a_client_error_is_not_sent_elsewhere_even_with_fallback():
    a = StubProvider("a", fail_with=InvalidRequestError("bad request"))
    b = StubProvider("b")
    strategy = make(a, b, arms=arms_for(Arm("A", 50, target="a"), Arm("B", 50, target="b")),
                    fallback=True)
    with pytest.raises(InvalidRequestError):
        await routed(strategy, context(key="k"))
    assert (a.calls, b.calls) == (1, 0)


async def test_an_arm_whose_target_does_not_serve_the_model_is_refused():
    picky = StubProvider("a", ProviderSettings(type="stub", models=["other"]))
    b = StubProvider("b")
    arms = arms_for(Arm("A", 50, target="a"), Arm("B", 50, target="b"))
    with pytest.raises(ModelNotFoundError, match="no target serves chat for model m"):
        await routed(make(picky, b, arms=arms), context(key="k"))
    assert (picky.calls, b.calls) == (0, 0)
    assert await routed(make(picky, b, arms=arms, fallback=True), context(key="k")) == "b"
