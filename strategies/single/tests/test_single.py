import pytest
from ferro import ModelNotFoundError, UpstreamError
from ferro.testing import StrategyContract, StubProvider


class TestSingleContract(StrategyContract):
    mode = "single"


async def test_uses_only_the_first_target_and_does_not_fall_back():
    a = StubProvider("a", fail_with=UpstreamError("down", status=503))
    b = StubProvider("b")
    strategy = TestSingleContract().make(a, b)
    with pytest.raises(UpstreamError):
        await StrategyContract.route(strategy)
    assert (a.calls, b.calls) == (1, 0)


async def test_unsupported_model_is_refused_without_a_call():
    class PickyProvider(StubProvider):
        def supports_model(self, model):
            return False

    a = PickyProvider("a")
    strategy = TestSingleContract().make(a)
    with pytest.raises(ModelNotFoundError, match="no target serves chat for model m"):
        await StrategyContract.route(strategy)
    assert a.calls == 0
