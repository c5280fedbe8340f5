import pytest
from ferro import (
    ConfigError,
    EmbeddingsRequest,
    InvalidRequestError,
    ModelNotFoundError,
    Price,
    ProviderSettings,
    RequestContext,
    StrategyConfig,
    Target,
    UpstreamError,
)
from ferro.pricing import Pricing
from ferro.testing import StrategyContract, StubProvider, stub_config
from ferro_strategy_cost_optimized import CostOptimizedOptions, CostOptimizedStrategy


class TestCostOptimizedContract(StrategyContract):
    mode = "cost-optimized"


def down(name):
    return StubProvider(name, fail_with=UpstreamError(f"{name} down", status=503))


def make(*providers, prices, **options):
    """The strategy over ``providers``, priced by ``prices`` (name -> Price)."""
    pricing = Pricing(prices)
    targets = [Target(p.name, p, kind="stub", pricing=pricing) for p in providers]
    config = StrategyConfig(mode="cost-optimized", options=CostOptimizedOptions(**options))
    return CostOptimizedStrategy(config, targets)


async def route(strategy, ctx=None):
    ctx = ctx or StrategyContract.context()
    await StrategyContract.route(strategy, ctx)
    return ctx


async def order_tried(strategy):
    """Every target the strategy would use, in its order (each of them failing)."""
    ctx = StrategyContract.context()
    with pytest.raises(UpstreamError):
        await StrategyContract.route(strategy, ctx)
    return ctx.tried


async def test_the_cheapest_target_answers_and_its_price_is_recorded():
    strategy = make(StubProvider("a"), StubProvider("b"), StubProvider("c"), prices={
        "stub/m": Price(input=10, output=30),  # by provider type: a's
        "b/m": Price(input=1, output=2),
        "c/m": Price(input=2, output=4),
    })
    ctx = await route(strategy)
    assert (ctx.provider, ctx.tried) == ("b", ["b"])
    assert ctx.metadata["route_price"] == 3


async def test_a_failing_cheap_target_falls_back_to_the_next_cheapest():
    strategy = make(StubProvider("a"), down("b"), StubProvider("c"), prices={
        "a/m": Price(input=10, output=30),
        "b/m": Price(input=1, output=2),
        "c/m": Price(input=2, output=4),
    })
    ctx = await route(strategy)
    assert (ctx.provider, ctx.tried) == ("c", ["b", "c"])
    assert ctx.metadata["route_price"] == 6


async def test_equal_prices_keep_config_order():
    price = Price(input=1, output=1)
    strategy = make(down("a"), down("b"), down("c"), prices={"a/m": Price(input=5, output=5),
                                                             "b/m": price, "c/m": price})
    assert await order_tried(strategy) == ["b", "c", "a"]


async def test_the_allow_list_is_of_upstream_models():
    def mapped(name, upstream):
        return StubProvider(name, ProviderSettings(type="stub", model_map={"m": upstream}))

    strategy = make(mapped("a", "m-small"), mapped("b", "m-large"), mapped("c", "m-huge"),
                    prices={"m-small": Price(input=1, output=1),
                            "m-large": Price(input=5, output=5),
                            "m-huge": Price(input=2, output=2)},
                    models=["m-large", "m-huge"])
    ctx = await route(strategy)
    assert (ctx.provider, ctx.tried) == ("c", ["c"])


async def test_the_tier_floor_keeps_only_models_of_that_tier_or_better():
    strategy = make(down("economy"), down("premium"), down("standard"), down("no-tier"),
                    down("unpriced"), prices={
                        "economy/m": Price(input=0.1, output=0.1, tier="economy"),
                        "premium/m": Price(input=9, output=9, tier="premium"),
                        "standard/m": Price(input=1, output=1, tier="standard"),
                        "no-tier/m": Price(input=0.01, output=0.01),
                    }, min_tier="standard")
    assert await order_tried(strategy) == ["standard", "premium"]


@pytest.mark.parametrize(("unpriced", "order"), [
    ("last", ["c", "b", "a", "d"]),
    ("exclude", ["c", "b"]),
])
async def test_unpriced_targets_go_last_in_config_order_or_are_excluded(unpriced, order):
    strategy = make(down("a"), down("b"), down("c"), down("d"), prices={
        "b/m": Price(input=5, output=5),
        "c/m": Price(input=1, output=1),
        "d/m": Price(tier="premium"),  # a tier but no price: unpriced too
    }, unpriced=unpriced)
    assert await order_tried(strategy) == order


async def test_nothing_meeting_the_floor_is_a_400_naming_the_floor_and_model():
    a, b = StubProvider("a"), StubProvider("b")
    strategy = make(a, b, prices={"m": Price(input=1, output=1, tier="economy")},
                    min_tier="premium", models=["m"])
    with pytest.raises(InvalidRequestError) as info:
        await route(strategy)
    assert info.value.status == 400
    assert info.value.code == "no_target_meets_quality_floor"
    assert info.value.message == ("no target meets the quality floor (models: m; "
                                  "min_tier: premium) for model m")
    assert a.calls + b.calls == 0


async def test_no_target_serving_the_model_is_model_not_found():
    class Picky(StubProvider):
        def supports_model(self, model):
            return False

    strategy = make(Picky("a"), prices={"m": Price(input=1, output=1)})
    with pytest.raises(ModelNotFoundError):
        await route(strategy)


async def test_embeddings_are_ranked_by_their_embedding_price():
    strategy = make(StubProvider("a"), StubProvider("b"), prices={
        "a/e": Price(embedding=0.13), "b/e": Price(embedding=0.02)})
    ctx = RequestContext(EmbeddingsRequest({"model": "e", "input": "x"}), "test-request")
    await StrategyContract.route(strategy, ctx)
    assert (ctx.provider, ctx.metadata["route_price"]) == ("b", 0.02)


async def test_an_order_is_worked_out_once_per_operation_and_model():
    class Counting(Pricing):
        finds = 0

        def find(self, model, *providers):
            self.finds += 1
            return super().find(model, *providers)

    pricing = Counting({"b/m": Price(input=1, output=1)})
    targets = [Target(n, StubProvider(n), kind="stub", pricing=pricing) for n in "ab"]
    strategy = CostOptimizedStrategy(StrategyConfig(mode="cost-optimized",
                                                    options=CostOptimizedOptions()), targets)
    for _ in range(3):
        assert (await route(strategy)).provider == "b"
    assert pricing.finds == 2  # one per target, on the first request
    await route(strategy, StrategyContract.context(model="other"))
    assert pricing.finds == 4


@pytest.mark.parametrize(("options", "field"), [
    ({"min_tier": "gold"}, "min_tier"),
    ({"unpriced": "first"}, "unpriced"),
    ({"models": "gpt-4o"}, "models"),
    ({"cheapest": True}, "cheapest"),
])
def test_bad_options_name_their_key(ferro_app, stub_plugins, options, field):
    config = stub_config("a", "b", strategy="cost-optimized")
    config["strategy"]["options"] = options
    with pytest.raises(ConfigError, match=rf"strategy\.options\.{field}"):
        ferro_app(config, pm=stub_plugins)
