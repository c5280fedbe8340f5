"""The limits: options and their older shape, output tokens, message count, input length,
and input tokens (estimated, and counted with a stand-in tokenizer)."""

import asyncio

import pytest
from ferro import (
    ChatRequest,
    CompletionsRequest,
    ConfigError,
    EmbeddingsRequest,
    RejectedError,
    RequestContext,
)
from ferro.config import ConfigSource, build_options
from ferro.testing import installed_plugins, stub_config
from ferro_guardrail_max_tokens import MaxTokens, Options
from ferro_guardrail_max_tokens import plugin as plugin_module
from ferro_guardrail_max_tokens.inputs import chat_overhead
from ferro_guardrail_max_tokens.tokens import PIECE, count_tokens, encoding_name

CHAT = "/v1/chat/completions"


def guard(encodings=None, **options):
    built = build_options(MaxTokens, options, ConfigSource("<test>"), ())
    return MaxTokens(built, encodings=encodings if encodings is not None else {})


def chat(*texts, model="m", **body):
    return RequestContext(ChatRequest({"model": model, "messages": [
        {"role": "user", "content": text} for text in texts], **body}), "rid")


async def refusal(plugin, ctx):
    with pytest.raises(RejectedError) as info:
        await plugin.before_request(ctx)
    return info.value.code, info.value.message


class CharTokens:
    """A stand-in tokenizer: one token per character; records what it was given."""

    def __init__(self):
        self.calls = []

    def encode_ordinary(self, text):
        self.calls.append(text)
        return list(range(len(text)))


def test_both_names_are_registered():
    row = installed_plugins()["guardrail-max-tokens"]
    assert row["distribution"] == "ferro-guardrail-max-tokens"
    assert row["registers"] == {"plugins": ["max-tokens", "max-token"]}


def test_defaults_are_the_older_gateways():
    options = Options()
    assert (options.max_tokens, options.max_messages, options.max_input_length,
            options.max_input_tokens) == (4096, 100, 0, 0)


def test_whole_floats_are_read_as_ints():
    built = build_options(MaxTokens, {"max_tokens": 4096.0, "max_messages": 50},
                          ConfigSource("<test>"), ())
    assert built.max_tokens == 4096 and isinstance(built.max_tokens, int)
    assert built.max_messages == 50 and isinstance(built.max_messages, int)


@pytest.mark.parametrize(("options", "where", "says"), [
    ({"max_tokens": 4096.5}, "max_tokens", "must be a whole number, 0 to turn the limit off "
                                           "(got 4096.5)"),
    ({"max_messages": -1}, "max_messages", "must be a whole number"),
    ({"max_input_length": "100"}, "max_input_length", "expected a number"),
    ({"max_input_tokens": True}, "max_input_tokens", "expected a number"),
    ({"max_token": 10}, "max_token", "unknown key 'max_token'"),
])
def test_bad_options_are_located_config_errors(ferro_app, options, where, says):
    with pytest.raises(ConfigError) as info:
        ferro_app({"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}],
                   "plugins": [{"name": "max-tokens", "config": options}]})
    assert f"plugins[0].config.{where}: " in info.value.message
    assert says in info.value.message


@pytest.mark.parametrize(("body", "message"), [
    ({"max_tokens": 5000}, "max_tokens 5000 exceeds limit of 4096"),
    ({"max_completion_tokens": 4097}, "max_completion_tokens 4097 exceeds limit of 4096"),
    ({"max_tokens": 100, "max_completion_tokens": 9000},
     "max_completion_tokens 9000 exceeds limit of 4096"),
    ({"max_tokens": 5000.0}, "max_tokens 5000 exceeds limit of 4096"),
    ({"max_tokens": 4096.5}, "max_tokens 4096.5 exceeds limit of 4096"),
])
async def test_asking_for_more_output_tokens_than_the_limit_is_refused(body, message):
    assert await refusal(guard(), chat("hi", **body)) == ("max_tokens_exceeded", message)


@pytest.mark.parametrize("body", [{}, {"max_tokens": 4096}, {"max_completion_tokens": 1},
                                  {"max_tokens": None}])
async def test_within_the_output_limit_or_without_one_passes(body):
    await guard().before_request(chat("hi", **body))


async def test_the_output_limit_applies_to_legacy_completions_and_0_turns_it_off():
    ctx = RequestContext(CompletionsRequest({"model": "m", "prompt": "x", "max_tokens": 5000}),
                         "rid")
    assert (await refusal(guard(), ctx))[0] == "max_tokens_exceeded"
    await guard(max_tokens=0).before_request(ctx)


async def test_more_messages_than_the_limit_is_refused():
    plugin = guard(max_messages=3)
    await plugin.before_request(chat("a", "b", "c"))
    assert await refusal(plugin, chat("a", "b", "c", "d")) == (
        "too_many_messages", "message count 4 exceeds limit of 3")
    await guard(max_messages=0).before_request(chat(*"abcdefgh"))


async def test_input_length_counts_the_characters_of_every_text():
    ctx = RequestContext(ChatRequest({"model": "m", "messages": [
        {"role": "system", "content": "12345"},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "12"}, {"type": "image_url", "image_url": {"url": "x"}},
            {"type": "text", "text": "34"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    ]}), "rid")
    # 5 + "ann" 3 + "12\n34" 5 + "{}" 2
    await guard(max_input_length=15).before_request(ctx)
    assert await refusal(guard(max_input_length=14), ctx) == (
        "input_too_long", "total input length 15 exceeds limit of 14")


@pytest.mark.parametrize("request_", [
    CompletionsRequest({"model": "m", "prompt": ["12345", "678"]}),
    EmbeddingsRequest({"model": "m", "input": ["1234", "5678"]}),
])
async def test_input_length_applies_to_prompts_and_embeddings_inputs(request_):
    ctx = RequestContext(request_, "rid")
    assert await refusal(guard(max_input_length=7), ctx) == (
        "input_too_long", "total input length 8 exceeds limit of 7")


def test_chat_overhead_follows_openais_cookbook():
    assert chat_overhead([{"role": "user"}]) == 4 + 3
    assert chat_overhead([{"role": "system"}, {"role": "user", "name": "ann"}]) == 4 + 5 + 3


async def test_input_tokens_are_estimated_at_4_utf8_bytes_per_token():
    # 400 ASCII characters: 100 tokens, plus 4 for the message and 3 priming the reply
    ctx = chat("x" * 400, model="claude-sonnet-4-5")
    await guard(max_input_tokens=107).before_request(ctx)
    assert await refusal(guard(max_input_tokens=106), ctx) == (
        "input_tokens_exceeded", "estimated input tokens 107 exceeds limit of 106")
    # 100 three-byte characters are 300 bytes: 75 tokens
    wide = chat("語" * 100, model="claude-sonnet-4-5")
    assert (await refusal(guard(max_input_tokens=50), wide))[1] == \
        "estimated input tokens 82 exceeds limit of 50"


async def test_token_arrays_count_as_their_length():
    ctx = RequestContext(EmbeddingsRequest({"model": "e", "input": [[1] * 30, [2] * 21]}), "rid")
    await guard(max_input_tokens=51).before_request(ctx)
    assert (await refusal(guard(max_input_tokens=50), ctx))[1] == \
        "estimated input tokens 51 exceeds limit of 50"


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-4o", "o200k_base"), ("gpt-4o-mini-2024-07-18", "o200k_base"),
    ("chatgpt-4o-latest", "o200k_base"), ("gpt-4.1-nano", "o200k_base"),
    ("gpt-5", "o200k_base"), ("o1-preview", "o200k_base"), ("o3-mini", "o200k_base"),
    ("o4-mini", "o200k_base"), ("ft:gpt-4o-mini:org::abc", "o200k_base"),
    ("openai/gpt-4o", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"),
    ("gpt-35-turbo", "cl100k_base"), ("text-embedding-3-small", "cl100k_base"),
    ("claude-sonnet-4-5", None), ("llama-3.1-70b", None), ("gpt-oss-120b", None), ("", None),
])
def test_model_families_and_their_encodings(model, encoding):
    assert encoding_name(model) == encoding


async def test_an_openai_model_is_counted_with_its_familys_tokenizer():
    o200k, cl100k = CharTokens(), CharTokens()
    plugin = guard({"o200k_base": o200k, "cl100k_base": cl100k}, max_input_tokens=20)
    # 26 bytes could be 26 tokens, so they are counted: 13 + 7 for the chat format
    await plugin.before_request(chat("é" * 13, model="gpt-4o"))
    assert o200k.calls == ["é" * 13] and cl100k.calls == []
    assert await refusal(plugin, chat("b" * 14, model="gpt-4")) == (
        "input_tokens_exceeded", "input of at least 21 tokens (cl100k_base) exceeds limit of 20")
    assert cl100k.calls == ["b" * 14]


async def test_a_model_outside_the_families_is_estimated_even_with_a_tokenizer():
    tokens = CharTokens()
    plugin = guard({"o200k_base": tokens, "cl100k_base": tokens}, max_input_tokens=20)
    assert await refusal(plugin, chat("x" * 80, model="mistral-large")) == (
        "input_tokens_exceeded", "estimated input tokens 27 exceeds limit of 20")
    assert tokens.calls == []


async def test_a_request_within_its_byte_count_is_not_tokenized():
    tokens = CharTokens()
    plugin = guard({"o200k_base": tokens}, max_input_tokens=1000)
    await plugin.before_request(chat("hello " * 100, "and more", model="gpt-4o"))
    assert tokens.calls == []


async def test_a_long_text_is_counted_in_pieces_cut_before_spaces():
    tokens = CharTokens()
    text = "word " * 5000  # 25,000 characters
    assert await count_tokens(tokens, [text], budget=10**9) == len(text)
    assert "".join(tokens.calls) == text
    assert len(tokens.calls) > 1
    assert all(PIECE // 2 <= len(piece) <= PIECE for piece in tokens.calls[:-1])
    assert all(piece.startswith(" ") for piece in tokens.calls[1:])


async def test_a_long_text_without_spaces_is_cut_at_the_piece_length():
    tokens = CharTokens()
    assert await count_tokens(tokens, ["x" * (PIECE * 2 + 1)], budget=10**9) == PIECE * 2 + 1
    assert [len(piece) for piece in tokens.calls] == [PIECE, PIECE, 1]


async def test_counting_stops_once_past_the_budget():
    tokens = CharTokens()
    assert await count_tokens(tokens, ["y" * (PIECE * 10), "never read"], budget=PIECE + 5) \
        == PIECE * 2
    assert len(tokens.calls) == 2


async def test_counting_a_long_text_lets_other_tasks_run_between_pieces():
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    seen = []

    class Watching(CharTokens):
        def encode_ordinary(self, text):
            seen.append(ticks)
            return super().encode_ordinary(text)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await count_tokens(Watching(), ["z" * (PIECE * 4)], budget=10**9)
    task.cancel()
    assert len(seen) == 4
    assert seen == sorted(set(seen))  # the ticker ran between every two pieces


def test_tokenizers_are_loaded_only_when_input_tokens_are_limited(monkeypatch):
    def must_not_load():
        raise AssertionError("loaded the tokenizers")

    monkeypatch.setattr(plugin_module, "installed_encodings", must_not_load)
    assert MaxTokens(Options(max_tokens=10, max_input_length=10)).encodings == {}
    loaded = {"o200k_base": CharTokens()}
    monkeypatch.setattr(plugin_module, "installed_encodings", lambda: loaded)
    assert MaxTokens(Options(max_input_tokens=10)).encodings is loaded


async def test_the_older_config_shape_in_a_gateway(ferro_client, stub_plugins):
    config = stub_config("a")
    config["plugins"] = [{"name": "max-token", "type": "guardrail", "stage": "before_request",
                          "enabled": True,
                          "config": {"max_tokens": 4096, "max_messages": 50,
                                     "max_input_length": 0}}]
    client = await ferro_client(config, pm=stub_plugins)
    ok = await client.post(CHAT, json={"model": "m", "max_tokens": 4096,
                                       "messages": [{"role": "user", "content": "x" * 10**5}]})
    assert ok.status == 200
    too_many = await client.post(CHAT, json={"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": str(i)} for i in range(51)]})
    assert too_many.status == 400
    assert await too_many.json() == {"error": {
        "message": "request rejected by max-token: message count 51 exceeds limit of 50",
        "type": "invalid_request_error", "code": "too_many_messages", "param": "messages"}}
    stream = await client.post(CHAT, json={"model": "m", "max_tokens": 8192, "stream": True,
                                           "messages": [{"role": "user", "content": "x"}]})
    assert stream.status == 400
    assert (await stream.json())["error"]["code"] == "max_tokens_exceeded"
