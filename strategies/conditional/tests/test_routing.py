"""The conditional strategy driven as the pipeline drives it (``route`` with the kernel's
attempt helper) over stub providers: every rule key, rule order, model rewrites, skipped
rules, the default target, fallback, and which requests read the prompt text."""

from typing import Any

import pytest
from ferro import (
    ChatRequest,
    CompletionsRequest,
    Condition,
    EmbeddingsRequest,
    Identity,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderSettings,
    RequestContext,
    StrategyConfig,
    UpstreamError,
)
from ferro.testing import StrategyContract, StubOptions, StubProvider
from ferro_strategy_conditional import ConditionalOptions, ConditionalStrategy


class TestConditionalContract(StrategyContract):
    mode = "conditional"

    def strategy_config(self) -> StrategyConfig:
        # A rule for a model the contract never asks for: its requests take the default path.
        return StrategyConfig(mode=self.mode, conditions=[
            Condition(key="model", value="never-sent", target_key="b")])

    def make(self, *providers: StubProvider) -> ConditionalStrategy:
        # A few contract tests build the strategy over target "a" alone; the rule's target
        # must exist all the same (naming no target is a config error), so add it, last.
        if not any(p.name == "b" for p in providers):
            providers = (*providers, StubProvider("b"))
        return super().make(*providers)

    async def test_contract_requests_take_the_default_path(self) -> None:
        a, b = StubProvider("a"), StubProvider("b")
        ctx = self.context()
        assert (await self.route(self.make(a, b), ctx)).provider == "a"
        assert ctx.metadata["route_rule"] == "default"


class TestConditionalFallbackContract(TestConditionalContract):
    """The same contract with ``fallback`` on."""

    def strategy_config(self) -> StrategyConfig:
        config = super().strategy_config()
        config.options = ConditionalOptions(fallback=True)
        return config


# --- helpers -------------------------------------------------------------------------------


def make(conditions: list[Condition], *providers: StubProvider,
         **options: Any) -> ConditionalStrategy:
    config = StrategyConfig(mode="conditional", conditions=conditions,
                            options=ConditionalOptions(**options))
    return ConditionalStrategy(config, StrategyContract.targets(*providers))


def chat(content: Any = "hi", *, model: str = "gpt-4o", user: str | None = None,
         headers: dict[str, str] | None = None, identity: Identity | None = None,
         messages: Any = None) -> RequestContext:
    if messages is None:
        messages = [{"role": "user", "content": content}]
    body: dict[str, Any] = {"model": model, "messages": messages}
    if user is not None:
        body["user"] = user
    return RequestContext(ChatRequest(body), "test-request", identity=identity,
                          headers=headers or {})


async def routed(strategy: ConditionalStrategy, ctx: RequestContext) -> str:
    """The name of the target that answered ``ctx``."""
    return (await StrategyContract.route(strategy, ctx)).provider


def serving(name: str, *models: str, operations: tuple[str, ...] | None = None,
            fail_with: Any = None) -> StubProvider:
    """A stub serving only ``models`` (every model when none) and ``operations``."""
    options = StubOptions() if operations is None else StubOptions(operations=list(operations))
    return StubProvider(name, ProviderSettings(type="stub", models=list(models), options=options),
                        fail_with=fail_with)


# --- each rule key ---------------------------------------------------------------------------

RULES = [
    pytest.param(Condition(key="model", value="gpt-4o", target_key="b"),
                 lambda: chat(model="gpt-4o"), lambda: chat(model="gpt-4o-mini"), id="model"),
    pytest.param(Condition(key="model_prefix", value="claude-", target_key="b"),
                 lambda: chat(model="claude-3-5-sonnet"), lambda: chat(model="gpt-4o"),
                 id="model_prefix"),
    pytest.param(Condition(key="prompt_regex", value=r"\bdef \w+\(", target_key="b"),
                 lambda: chat("DEF area(r): ..."), lambda: chat("define a word"),
                 id="prompt_regex"),
    pytest.param(Condition(key="prompt_contains", value="Invoice", target_key="b"),
                 lambda: chat("my INVOICE is late"), lambda: chat("my order is late"),
                 id="prompt_contains"),
    pytest.param(Condition(key="user", value="alice", target_key="b"),
                 lambda: chat(user="alice"), lambda: chat(user="bob"), id="user"),
    pytest.param(Condition(key="header", header="X-Team", value="ml", target_key="b"),
                 lambda: chat(headers={"x-team": "ml"}),
                 lambda: chat(headers={"x-team": "web"}), id="header"),
    pytest.param(Condition(key="key_name", value="batch-jobs", target_key="b"),
                 lambda: chat(identity=Identity("k1", name="batch-jobs")),
                 lambda: chat(identity=Identity("k2", name="web-app")), id="key_name"),
    pytest.param(Condition(key="key_tag", value="premium", target_key="b"),
                 lambda: chat(identity=Identity("k1", attributes={"tags": ["eu", "premium"]})),
                 lambda: chat(identity=Identity("k2", attributes={"tags": ["eu"]})),
                 id="key_tag"),
]


@pytest.mark.parametrize(("condition", "matching", "other"), RULES)
async def test_each_rule_key_matches_and_does_not(condition, matching, other):
    a, b = StubProvider("a"), StubProvider("b")
    strategy = make([condition], a, b)
    hit, miss = matching(), other()
    assert await routed(strategy, hit) == "b"
    assert hit.metadata["route_rule"] == 0
    assert await routed(strategy, miss) == "a"
    assert miss.metadata["route_rule"] == "default"
    assert (a.calls, b.calls) == (1, 1)


@pytest.mark.parametrize("condition", [
    Condition(key="key_name", value="batch-jobs", target_key="b"),
    Condition(key="key_tag", value="premium", target_key="b"),
])
async def test_key_rules_never_match_an_anonymous_caller(condition):
    assert await routed(make([condition], StubProvider("a"), StubProvider("b")), chat()) == "a"


@pytest.mark.parametrize(("condition", "other"), [
    (Condition(key="model", value="GPT-4o", target_key="b"), chat(model="gpt-4o")),
    (Condition(key="header", header="X-Team", value="ML", target_key="b"),
     chat(headers={"x-team": "ml"})),
    (Condition(key="user", value="Alice", target_key="b"), chat(user="alice")),
])
async def test_rules_other_than_prompt_rules_compare_letter_case_too(condition, other):
    assert await routed(make([condition], StubProvider("a"), StubProvider("b")), other) == "a"


@pytest.mark.parametrize("condition", [
    Condition(key="prompt_regex", value="SELECT .* FROM", target_key="b", case_sensitive=True),
    Condition(key="prompt_contains", value="SELECT", target_key="b", case_sensitive=True),
])
async def test_case_sensitive_prompt_rules(condition):
    strategy = make([condition], StubProvider("a"), StubProvider("b"))
    assert await routed(strategy, chat("SELECT id FROM users")) == "b"
    assert await routed(strategy, chat("select id from users")) == "a"


@pytest.mark.parametrize(("condition", "absent", "present"), [
    (Condition(key="user", value="", target_key="b"), chat(), chat(user="alice")),
    (Condition(key="header", header="X-Team", value="", target_key="b"), chat(),
     chat(headers={"x-team": "ml"})),
])
async def test_an_empty_value_matches_an_absent_field(condition, absent, present):
    strategy = make([condition], StubProvider("a"), StubProvider("b"))
    assert await routed(strategy, absent) == "b"
    assert await routed(strategy, present) == "a"


async def test_key_tags_given_as_one_string_are_one_tag():
    strategy = make([Condition(key="key_tag", value="eu", target_key="b")],
                    StubProvider("a"), StubProvider("b"))
    tagged = chat(identity=Identity("k1", attributes={"tags": "eu"}))
    assert await routed(strategy, tagged) == "b"
    not_a_substring = chat(identity=Identity("k2", attributes={"tags": "europe"}))
    assert await routed(strategy, not_a_substring) == "a"


# --- order, rewrites, skips --------------------------------------------------------------------


async def test_the_first_matching_rule_wins():
    a, b, c = StubProvider("a"), StubProvider("b"), StubProvider("c")
    strategy = make([Condition(key="model", value="nope", target_key="a"),
                     Condition(key="model_prefix", value="gpt-", target_key="b"),
                     Condition(key="model", value="gpt-4o", target_key="c")], a, b, c)
    ctx = chat(model="gpt-4o")
    assert await routed(strategy, ctx) == "b"
    assert ctx.metadata["route_rule"] == 1
    assert (a.calls, b.calls, c.calls) == (0, 1, 0)


async def test_a_rule_with_a_model_asks_its_target_for_that_model():
    a, coder = StubProvider("a"), serving("coder", "codestral-latest")
    strategy = make([Condition(key="prompt_regex", value=r"```|\bdef |\bclass ",
                               target_key="coder", model="codestral-latest")], a, coder)
    ctx = chat("Why does this fail?\n```python\nprint(1/0)\n```")
    response = await StrategyContract.route(strategy, ctx)
    assert response.provider == "coder"
    assert response.body["model"] == "codestral-latest"
    assert coder.requests[0].model == "codestral-latest"
    assert ctx.request.body["model"] == "codestral-latest"
    plain = chat("What is the capital of France?")
    assert await routed(strategy, plain) == "a"
    assert plain.request.body["model"] == "gpt-4o"


async def test_a_rule_whose_target_does_not_serve_the_model_is_skipped():
    a, b, c = StubProvider("a"), serving("b", "other-model"), StubProvider("c")
    strategy = make([Condition(key="model_prefix", value="gpt-", target_key="b"),
                     Condition(key="model_prefix", value="gpt-", target_key="c")], a, b, c)
    ctx = chat(model="gpt-4o")
    assert await routed(strategy, ctx) == "c"
    assert ctx.metadata["route_rule"] == 1
    assert b.calls == 0


async def test_a_skipped_rule_does_not_rewrite_the_model():
    a, b = StubProvider("a"), serving("b", "other-model")
    strategy = make([Condition(key="model", value="gpt-4o", target_key="b",
                               model="codestral-latest")], a, b)
    ctx = chat(model="gpt-4o")
    assert await routed(strategy, ctx) == "a"
    assert ctx.request.body["model"] == "gpt-4o"
    assert ctx.metadata["route_rule"] == "default"


async def test_the_rewritten_model_decides_whether_the_target_serves_it():
    # b serves only the model the rule asks for, not the model the request named
    a, b = StubProvider("a"), serving("b", "codestral-latest")
    strategy = make([Condition(key="model", value="gpt-4o", target_key="b",
                               model="codestral-latest")], a, b)
    assert await routed(strategy, chat(model="gpt-4o")) == "b"


async def test_a_rule_whose_target_lacks_the_operation_is_skipped():
    chat_only = serving("chat-only", operations=("chat",))
    a = StubProvider("a")
    strategy = make([Condition(key="model", value="m", target_key="chat-only")], a, chat_only)
    ctx = RequestContext(EmbeddingsRequest({"model": "m", "input": "x"}), "test-request")
    assert await routed(strategy, ctx) == "a"
    assert chat_only.calls == 0


# --- the default target ------------------------------------------------------------------------


async def test_the_default_option_names_the_target_for_unmatched_requests():
    a, b, c = StubProvider("a"), StubProvider("b"), StubProvider("c")
    strategy = make([Condition(key="model", value="nope", target_key="b")], a, b, c, default="c")
    ctx = chat()
    assert await routed(strategy, ctx) == "c"
    assert ctx.metadata["route_rule"] == "default"


async def test_without_a_default_option_the_first_target_is_the_default():
    a, b = StubProvider("a"), StubProvider("b")
    assert await routed(make([Condition(key="model", value="nope", target_key="b")], a, b),
                        chat()) == "a"


async def test_a_default_that_does_not_serve_the_model_gives_way_to_the_first_that_does():
    a, b, c = serving("a", "other-model"), serving("b", "other-model"), StubProvider("c")
    strategy = make([Condition(key="model", value="nope", target_key="a")], a, b, c, default="b")
    ctx = chat()
    assert await routed(strategy, ctx) == "c"
    assert ctx.metadata["route_rule"] == "default"


async def test_no_target_serving_the_request_is_a_model_not_found():
    a, b = serving("a", "other-model"), serving("b", "other-model")
    strategy = make([Condition(key="model", value="gpt-4o", target_key="b")], a, b)
    with pytest.raises(ModelNotFoundError, match="no target serves chat for model gpt-4o"):
        await routed(strategy, chat())
    assert a.calls + b.calls == 0


# --- fallback ---------------------------------------------------------------------------------


def down(name: str, *models: str) -> StubProvider:
    return serving(name, *models, fail_with=UpstreamError(f"{name} overloaded", status=503))


async def test_without_fallback_the_chosen_targets_failure_is_the_answer():
    a, b, c = StubProvider("a"), down("b"), StubProvider("c")
    strategy = make([Condition(key="model", value="gpt-4o", target_key="b")], a, b, c)
    ctx = chat()
    with pytest.raises(UpstreamError, match="b overloaded"):
        await routed(strategy, ctx)
    assert (a.calls, b.calls, c.calls) == (0, 1, 0)
    assert ctx.tried == ["b"]


async def test_with_fallback_the_others_are_tried_in_config_order():
    a, b, c = down("a"), down("b"), StubProvider("c")
    strategy = make([Condition(key="model", value="gpt-4o", target_key="b")], a, b, c,
                    fallback=True)
    ctx = chat()
    assert await routed(strategy, ctx) == "c"
    assert ctx.tried == ["b", "a", "c"]
    assert ctx.metadata["route_rule"] == 0


async def test_fallback_follows_the_rewritten_model():
    # a serves only the request's model, so it cannot stand in for the code model
    a, coder, c = serving("a", "gpt-4o"), down("coder"), StubProvider("c")
    strategy = make([Condition(key="prompt_contains", value="def ", target_key="coder",
                               model="codestral-latest")], a, coder, c, fallback=True)
    ctx = chat("def f(): pass")
    response = await StrategyContract.route(strategy, ctx)
    assert response.provider == "c"
    assert response.body["model"] == "codestral-latest"
    assert ctx.tried == ["coder", "c"]


async def test_fallback_does_not_hide_a_request_the_client_got_wrong():
    a = StubProvider("a", fail_with=InvalidRequestError("bad request"))
    b = StubProvider("b")
    strategy = make([Condition(key="model", value="nope", target_key="b")], a, b, fallback=True)
    with pytest.raises(InvalidRequestError):
        await routed(strategy, chat())
    assert (a.calls, b.calls) == (1, 0)


async def test_when_every_target_fails_with_fallback_the_last_failure_is_the_answer():
    a, b = down("a"), down("b")
    strategy = make([Condition(key="model", value="nope", target_key="b")], a, b, fallback=True)
    with pytest.raises(UpstreamError, match="b overloaded"):
        await routed(strategy, chat())
    assert (a.calls, b.calls) == (1, 1)


# --- prompt text per operation and scope -------------------------------------------------------


async def test_scope_last_user_looks_at_the_last_user_message_only():
    messages = [{"role": "system", "content": "You review Python code."},
                {"role": "user", "content": "Python question: what is a decorator?"},
                {"role": "assistant", "content": "A function that wraps a function."},
                {"role": "user", "content": "Thanks! And in Rust?"}]
    a, b, c = StubProvider("a"), StubProvider("b"), StubProvider("c")
    last_user = make([Condition(key="prompt_contains", value="python", target_key="b")], a, b)
    everything = make([Condition(key="prompt_contains", value="python", target_key="c",
                                 scope="all")], a, c)
    assert await routed(last_user, chat(messages=messages)) == "a"
    assert await routed(everything, chat(messages=messages)) == "c"


async def test_prompt_rules_read_text_parts_of_chat_messages():
    parts = [{"type": "text", "text": "What is in this picture?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
             {"type": "text", "text": "Answer in one word."}]
    strategy = make([Condition(key="prompt_regex", value=r"picture\?\nanswer", target_key="b")],
                    StubProvider("a"), StubProvider("b"))
    assert await routed(strategy, chat(parts)) == "b"


@pytest.mark.parametrize("prompt", ["summarize: the report", ["hello", "summarize: the report"]])
async def test_prompt_rules_read_a_completions_prompt(prompt):
    strategy = make([Condition(key="prompt_contains", value="summarize:", target_key="b")],
                    StubProvider("a"), StubProvider("b"))
    ctx = RequestContext(CompletionsRequest({"model": "m", "prompt": prompt}), "test-request")
    assert await routed(strategy, ctx) == "b"
    tokens = RequestContext(CompletionsRequest({"model": "m", "prompt": [1, 2, 3]}), "test-request")
    assert await routed(strategy, tokens) == "a"


@pytest.mark.parametrize("value", ["invoice 42", ["receipt 7", "invoice 42"]])
async def test_prompt_rules_read_an_embeddings_input(value):
    strategy = make([Condition(key="prompt_regex", value=r"invoice \d+", target_key="b")],
                    StubProvider("a"), StubProvider("b"))
    ctx = RequestContext(EmbeddingsRequest({"model": "m", "input": value}), "test-request")
    assert await routed(strategy, ctx) == "b"
    tokens = RequestContext(EmbeddingsRequest({"model": "m", "input": [[5, 6], [7]]}),
                            "test-request")
    assert await routed(strategy, tokens) == "a"


# --- reading the messages only when a prompt rule needs them ----------------------------------


class Untouchable(list):
    """Chat messages that fail the test as soon as anything reads them."""

    def _read(self, *args: Any) -> Any:
        raise AssertionError("the messages were read")

    __iter__ = __reversed__ = __getitem__ = __len__ = __contains__ = __bool__ = _read


class Counted(list):
    """Chat messages that count how often they are walked."""

    walks = 0

    def __iter__(self) -> Any:
        Counted.walks += 1
        return super().__iter__()


NON_PROMPT_RULES = [
    Condition(key="model", value="gpt-4o-mini", target_key="b"),
    Condition(key="model_prefix", value="claude-", target_key="b"),
    Condition(key="user", value="alice", target_key="b"),
    Condition(key="header", header="X-Team", value="ml", target_key="b"),
    Condition(key="key_name", value="batch-jobs", target_key="b"),
    Condition(key="key_tag", value="premium", target_key="b"),
]


def untouchable_request() -> RequestContext:
    return chat(messages=Untouchable([{"role": "user", "content": "def f(): pass"}]))


async def test_rules_that_do_not_look_at_the_prompt_never_read_the_messages():
    a, b = StubProvider("a"), StubProvider("b")
    ctx = untouchable_request()
    assert await routed(make(NON_PROMPT_RULES, a, b), ctx) == "a"
    assert ctx.metadata["route_rule"] == "default"
    # the tripwire works: the same request reaching a prompt rule fails the test
    with_prompt_rule = make([*NON_PROMPT_RULES,
                             Condition(key="prompt_contains", value="def", target_key="b")], a, b)
    with pytest.raises(AssertionError, match="the messages were read"):
        await routed(with_prompt_rule, untouchable_request())


async def test_a_prompt_rule_after_the_matching_rule_is_never_reached():
    a, b = StubProvider("a"), StubProvider("b")
    strategy = make([Condition(key="model", value="gpt-4o", target_key="b"),
                     Condition(key="prompt_contains", value="def", target_key="a")], a, b)
    assert await routed(strategy, untouchable_request()) == "b"


async def test_the_messages_are_walked_once_however_many_prompt_rules_ask():
    Counted.walks = 0
    strategy = make([Condition(key="prompt_regex", value="rust", target_key="b"),
                     Condition(key="prompt_contains", value="go", target_key="b", scope="all"),
                     Condition(key="prompt_contains", value="zig", target_key="b",
                               case_sensitive=True),
                     Condition(key="prompt_regex", value="java", target_key="b", scope="all")],
                    StubProvider("a"), StubProvider("b"))
    messages = Counted([{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Which language is fastest?"}])
    assert await routed(strategy, chat(messages=messages)) == "a"
    assert Counted.walks == 1
