"""Legacy completions (``POST /v1/completions``) through every provider, with the official
openai client (``client.completions.create``), against a local fake of each provider's native
API, streamed and not.

Upstreams that have the endpoint (OpenAI, Azure OpenAI, Together, and any OpenAI-compatible
server at a custom base URL) get the client's body untouched at their own ``/completions``.
The others (Anthropic, Gemini, Cohere, Groq, Mistral, DeepSeek and Ollama on their default
base URLs, and echo) are served through their chat API: the prompt becomes a user message,
a list of prompts gets one answer each, and what chat cannot express is a 400 naming the
field. "On the default base URL" is the installed provider class with its default pointed
at the fake.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import attrs
import openai
import pytest
from ferro import hookimpl
from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.testing import single_provider

from tests.e2e.native_fakes import (
    MODELS,
    Reply,
    chat_routes,
    completions_routes,
    user_text,
    wire_of,
)

PROMPT, OTHER = "Say hi to the team", "Count to three"
#: What the fake models answer each prompt; the first is cut at max_tokens.
REPLIES = {
    PROMPT: Reply("Hi team, good morning to", finish="length", prompt_tokens=5,
                  completion_tokens=6),
    OTHER: Reply("One, two, three.", prompt_tokens=3, completion_tokens=4),
}
OPTIONS = {"max_tokens": 6, "temperature": 0.5}


def reply_to(prompt: str) -> Reply:
    return REPLIES[prompt]


@attrs.frozen
class PassThrough:
    """A provider whose upstream has its own ``/completions``."""

    model: str
    path: str
    settings: dict[str, Any] = attrs.Factory(dict)
    query: dict[str, str] = attrs.Factory(dict)
    auth: tuple[str, str] = ("Authorization", "Bearer k")
    #: Streamed usage rides on the finish chunk, and stream_options is not sent.
    usage_on_finish: bool = False


PASS_THROUGH = {
    "openai": PassThrough("gpt-3.5-turbo-instruct", "/v1/completions"),
    "together": PassThrough("meta-llama/Llama-3.3-70B-Instruct-Turbo", "/v1/completions",
                            usage_on_finish=True),
    "azure-openai": PassThrough(
        "gpt-35-turbo-instruct", "/openai/deployments/instruct-eu/completions",
        settings={"deployments": {"gpt-35-turbo-instruct": "instruct-eu"},
                  "deployment": "chat-eu"},
        query={"api-version": "2024-10-21"}, auth=("api-key", "k")),
}
TRANSLATED = ["anthropic", "gemini", "cohere", "groq", "mistral", "deepseek", "ollama", "echo"]
#: Where each wire format's chat request says how many tokens to generate at most.
MAX_TOKENS_AT = {"openai": ("max_tokens",), "anthropic": ("max_tokens",),
                 "cohere": ("max_tokens",), "gemini": ("generationConfig", "maxOutputTokens")}
#: OpenAI-compatible chat APIs that take no stream_options (usage comes on the last chunk).
NO_STREAM_OPTIONS = {"mistral", "together"}


def answer_of(provider: str, prompt: str) -> Reply:
    """What the client must get for ``prompt``: the fake's reply, or echo's own."""
    if provider == "echo":
        text = "echo: " + prompt
        return Reply(text, prompt_tokens=len(prompt.split()), completion_tokens=len(text.split()))
    return REPLIES[prompt]


def at_default_url(provider: str, url: str) -> tuple[Any, str]:
    """A plugin manager with provider type ``<provider>-here``: the installed class, whose
    default base URL is ``url`` (with the real default's path). Returns it and the type."""
    cls = build_registry(make_plugin_manager(env={})).lookup("providers", provider, "<test>")
    here = type(cls.__name__, (cls,), {
        "default_base_url": url + urlsplit(cls.default_base_url).path})
    kind = f"{provider}-here"

    class Here:
        @hookimpl
        def register_providers(self, register):
            register(kind, here)

    pm = make_plugin_manager(env={})
    pm.register(Here(), name=f"test-{kind}")
    return pm, kind


@pytest.fixture
def gateway(fake_upstream, openai_client):
    """``await gateway(provider)`` -> (openai client, fake upstream or None, model): the
    provider on its default base URL (Azure at its endpoint; echo needs none)."""

    async def start(provider: str):
        if provider == "echo":
            return await openai_client(single_provider("echo", type="echo")), None, "echo-1"
        if provider in PASS_THROUGH:
            case = PASS_THROUGH[provider]
            upstream = await fake_upstream(completions_routes(
                lambda body: reply_to(body["prompt"]), usage_on_finish=case.usage_on_finish))
            model = case.model
        else:
            wire = wire_of(provider)
            upstream = await fake_upstream(chat_routes(
                provider, lambda body: reply_to(user_text(wire, body))))
            model = MODELS[provider]
        key = {} if provider == "ollama" else {"api_key": "k"}
        if provider == "azure-openai":
            config = single_provider(provider, type=provider, base_url=upstream.url, **key,
                                     **PASS_THROUGH[provider].settings)
            return await openai_client(config), upstream, model
        pm, kind = at_default_url(provider, upstream.url)
        client = await openai_client(single_provider(provider, type=kind, **key), pm=pm)
        return client, upstream, model

    return start


def sent_body(model: str, prompt: Any, *, stream: bool) -> dict[str, Any]:
    """What the openai client sends for ``completions.create`` in these tests."""
    body = {"model": model, "prompt": prompt, **OPTIONS}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def check_pass_through(provider: str, upstream, *, stream: bool) -> None:
    case = PASS_THROUGH[provider]
    [call] = upstream.requests
    assert call.path == case.path
    assert call.query == case.query
    name, value = case.auth
    assert call.headers.get(name) == value
    expected = sent_body(case.model, PROMPT, stream=stream)
    if stream and case.usage_on_finish:
        del expected["stream_options"]
    assert call.json() == expected  # the native completions body, untouched


def check_chat_calls(provider: str, upstream, prompts: list[str], *, stream: bool) -> None:
    """One native chat call per prompt, each with the prompt as its only (user) message."""
    if upstream is None:
        return
    wire = wire_of(provider)
    assert len(upstream.requests) == len(prompts)
    seen = []
    for call in upstream.requests:
        body = call.json()
        seen.append(user_text(wire, body))
        if wire == "gemini":
            assert len(body["contents"]) == 1 and "systemInstruction" not in body
        else:
            assert len(body["messages"]) == 1 and body["messages"][0]["role"] == "user"
            assert "system" not in body
        limit: Any = body
        for key in MAX_TOKENS_AT[wire]:
            limit = limit[key]
        assert limit == OPTIONS["max_tokens"]
        if wire == "openai":
            assert body["model"] == MODELS[provider]
            assert "prompt" not in body
            assert bool(body.get("stream")) is stream
            if stream and provider not in NO_STREAM_OPTIONS:
                assert body["stream_options"] == {"include_usage": True}
    assert sorted(seen) == sorted(prompts)


async def read_stream(stream) -> tuple[dict[int, str], dict[int, str], list[Any]]:
    """(text by choice index, finish_reason by index, the usage chunks) of a stream."""
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    usage = []
    async for chunk in stream:
        assert chunk.object == "text_completion"
        if chunk.usage:
            assert chunk.choices == []
            usage.append(chunk.usage)
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                assert choice.index not in finishes
                finishes[choice.index] = choice.finish_reason
    return texts, finishes, usage


ALL = [*PASS_THROUGH, *TRANSLATED]


@pytest.mark.parametrize("provider", ALL)
async def test_completion(gateway, provider):
    client, upstream, model = await gateway(provider)
    reply = await client.completions.create(model=model, prompt=PROMPT, **OPTIONS)
    want = answer_of(provider, PROMPT)
    assert reply.object == "text_completion"
    [choice] = reply.choices
    assert (choice.index, choice.text, choice.finish_reason) == (0, want.text, want.finish)
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens,
            reply.usage.total_tokens) == (want.prompt_tokens, want.completion_tokens,
                                          want.prompt_tokens + want.completion_tokens)
    assert reply.model_extra["provider"] == provider
    if provider in PASS_THROUGH:
        check_pass_through(provider, upstream, stream=False)
    else:
        check_chat_calls(provider, upstream, [PROMPT], stream=False)


@pytest.mark.parametrize("provider", ALL)
async def test_streamed_completion(gateway, provider):
    client, upstream, model = await gateway(provider)
    stream = await client.completions.create(model=model, prompt=PROMPT, stream=True,
                                             stream_options={"include_usage": True}, **OPTIONS)
    texts, finishes, usage = await read_stream(stream)
    want = answer_of(provider, PROMPT)
    assert texts == {0: want.text}
    assert finishes == {0: want.finish}
    [total] = usage
    assert (total.prompt_tokens, total.completion_tokens) == (want.prompt_tokens,
                                                              want.completion_tokens)
    if provider in PASS_THROUGH:
        check_pass_through(provider, upstream, stream=True)
    else:
        check_chat_calls(provider, upstream, [PROMPT], stream=True)


@pytest.mark.parametrize("provider", TRANSLATED)
async def test_two_prompts_get_one_choice_each(gateway, provider):
    client, upstream, model = await gateway(provider)
    reply = await client.completions.create(model=model, prompt=[PROMPT, OTHER], **OPTIONS)
    first, second = answer_of(provider, PROMPT), answer_of(provider, OTHER)
    assert [(c.index, c.text, c.finish_reason) for c in reply.choices] == [
        (0, first.text, first.finish), (1, second.text, second.finish)]
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        first.prompt_tokens + second.prompt_tokens,
        first.completion_tokens + second.completion_tokens)
    check_chat_calls(provider, upstream, [PROMPT, OTHER], stream=False)


@pytest.mark.parametrize("provider", TRANSLATED)
async def test_two_prompts_streamed_get_one_choice_each(gateway, provider):
    client, upstream, model = await gateway(provider)
    stream = await client.completions.create(model=model, prompt=[PROMPT, OTHER], stream=True,
                                             stream_options={"include_usage": True}, **OPTIONS)
    texts, finishes, usage = await read_stream(stream)
    first, second = answer_of(provider, PROMPT), answer_of(provider, OTHER)
    assert texts == {0: first.text, 1: second.text}
    assert finishes == {0: first.finish, 1: second.finish}
    [total] = usage
    assert (total.prompt_tokens, total.completion_tokens) == (
        first.prompt_tokens + second.prompt_tokens,
        first.completion_tokens + second.completion_tokens)
    check_chat_calls(provider, upstream, [PROMPT, OTHER], stream=True)


@pytest.mark.parametrize("provider", TRANSLATED)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_echo_is_a_400_naming_it_on_a_translated_provider(gateway, provider, stream):
    client, upstream, model = await gateway(provider)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.completions.create(model=model, prompt=PROMPT, echo=True, stream=stream,
                                        **OPTIONS)
    assert "echo" in caught.value.message
    assert provider in caught.value.message
    if upstream is not None:
        assert upstream.requests == []


@pytest.mark.parametrize(("field", "named"), [
    ({"suffix": " and goodbye"}, "suffix"), ({"logprobs": 2}, "logprobs"),
    ({"best_of": 3}, "best_of=3")], ids=["suffix", "logprobs", "best_of"])
async def test_what_chat_cannot_express_is_a_400_naming_it(gateway, field, named):
    client, upstream, model = await gateway("gemini")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.completions.create(model=model, prompt=PROMPT, **field, **OPTIONS)
    assert named in caught.value.message
    assert upstream.requests == []


@pytest.mark.parametrize("provider", ["groq", "mistral", "deepseek", "ollama"])
async def test_custom_base_url_is_an_openai_compatible_server(fake_upstream, openai_client,
                                                              provider):
    """Off its default base URL an OpenAI-compatible provider passes completions through,
    streamed or not, to that server's own ``/completions``."""
    upstream = await fake_upstream(completions_routes(
        lambda body: reply_to(body["prompt"]), usage_on_finish=provider in NO_STREAM_OPTIONS))
    base = upstream.url + "/v1"
    key = {} if provider == "ollama" else {"api_key": "k"}
    client = await openai_client(single_provider(provider, type=provider, base_url=base, **key))
    model, want = MODELS[provider], REPLIES[PROMPT]
    reply = await client.completions.create(model=model, prompt=PROMPT, **OPTIONS)
    assert (reply.choices[0].text, reply.choices[0].finish_reason) == (want.text, want.finish)
    stream = await client.completions.create(model=model, prompt=PROMPT, stream=True,
                                             stream_options={"include_usage": True}, **OPTIONS)
    texts, finishes, usage = await read_stream(stream)
    assert (texts, finishes) == ({0: want.text}, {0: want.finish})
    assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == [
        (want.prompt_tokens, want.completion_tokens)]
    whole, streamed = upstream.requests
    assert whole.path == streamed.path == "/v1/completions"
    assert whole.json() == sent_body(model, PROMPT, stream=False)
    expected = sent_body(model, PROMPT, stream=True)
    if provider in NO_STREAM_OPTIONS:
        del expected["stream_options"]
    assert streamed.json() == expected
