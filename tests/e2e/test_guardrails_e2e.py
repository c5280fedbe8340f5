"""The guardrail plugins in a real gateway on loopback, in front of a fake OpenAI upstream,
driven by the official ``openai`` client (and by raw HTTP where the SSE framing matters)."""

import openai
import orjson
import pytest
from aiohttp import web
from ferro import hookimpl, make_plugin_manager
from ferro.testing import sse_body

MODEL = "gpt-4o"
WORDS = {"blocked_words": ["password", "secret code"]}
BLOCKED_IN_ANSWER = {
    "message": 'request rejected by blocklist: blocked word detected in the response: '
               '"secret code"',
    "type": "invalid_request_error", "code": "content_blocked", "param": None}


def completion(text):
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}


def chunk(delta, finish=None):
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


#: "The secret code is 42", with the blocked phrase split between the second and third chunk.
SPLIT = sse_body(chunk({"role": "assistant", "content": "The "}),
                 chunk({"content": "secret c"}), chunk({"content": "ode is "}),
                 chunk({"content": "42"}), chunk({}, "stop"), b"[DONE]")


async def openai_upstream(fake_upstream, text, stream=SPLIT):
    async def answer(request: web.Request) -> web.StreamResponse:
        if (await request.json()).get("stream"):
            return web.Response(body=stream, content_type="text/event-stream")
        return web.json_response(completion(text))

    return await fake_upstream({"POST /v1/chat/completions": answer})


def gateway(upstream, *plugins):
    return {"providers": {"openai": {"api_key": "sk-test", "base_url": upstream.url + "/v1"}},
            "targets": [{"virtual_key": "openai"}], "plugins": list(plugins)}


def blocklist(stage):
    return {"name": "blocklist", "type": "guardrail", "stage": stage, "config": WORDS}


class Exchanges:
    def __init__(self):
        self.seen = []

    @hookimpl
    def exchange_completed(self, exchange):
        self.seen.append(exchange)


@pytest.fixture
def exchanges():
    return Exchanges()


@pytest.fixture
def plugins(exchanges):
    pm = make_plugin_manager(env={})
    pm.register(exchanges, name="exchanges")
    return pm


def ask(text):
    return [{"role": "user", "content": text}]


def frames(raw: bytes) -> list[bytes]:
    """The SSE events of a body, each as its bytes, in order."""
    assert raw.endswith(b"\n\n")
    return raw[:-2].split(b"\n\n")


async def test_a_blocked_input_is_a_400_for_plain_and_stream_requests(
        fake_upstream, openai_client, http_session, plugins, exchanges):
    upstream = await openai_upstream(fake_upstream, "fine")
    client = await openai_client(gateway(upstream, blocklist("before_request")), pm=plugins)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model=MODEL, stream=stream,
                                                 messages=ask("my Password is hunter2"))
        assert info.value.status_code == 400
        assert info.value.code == "content_blocked"
        assert info.value.body["message"] == \
            'request rejected by blocklist: blocked word detected: "password"'
    # the stream request is refused before any stream: a plain JSON error, no SSE
    async with http_session.post(f"{client.base_url}chat/completions", json={
            "model": MODEL, "stream": True, "messages": ask("the secret code")}) as resp:
        assert resp.status == 400
        assert resp.content_type == "application/json"
        assert (await resp.json())["error"]["code"] == "content_blocked"
    assert upstream.requests == []
    assert [(e.stream, e.status, e.error.code) for e in exchanges.seen] == [
        (False, 400, "content_blocked"), (True, 400, "content_blocked"),
        (True, 400, "content_blocked")]


async def test_a_clean_request_passes_both_ways(fake_upstream, openai_client, plugins):
    upstream = await openai_upstream(fake_upstream, "all good", stream=sse_body(
        chunk({"role": "assistant", "content": "all "}), chunk({"content": "good"}),
        chunk({}, "stop"), b"[DONE]"))
    client = await openai_client(gateway(upstream, blocklist("before_request"),
                                         blocklist("after_request")), pm=plugins)
    reply = await client.chat.completions.create(model=MODEL, messages=ask("hello"))
    assert reply.choices[0].message.content == "all good"
    stream = await client.chat.completions.create(model=MODEL, messages=ask("hello"),
                                                  stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream
                    if c.choices]) == "all good"


async def test_a_blocked_phrase_in_a_whole_answer_is_a_400(fake_upstream, openai_client,
                                                           plugins, exchanges):
    upstream = await openai_upstream(fake_upstream, "The secret code is 42")
    client = await openai_client(gateway(upstream, blocklist("after_request")), pm=plugins)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model=MODEL, messages=ask("what is it?"))
    assert info.value.status_code == 400
    assert info.value.body == BLOCKED_IN_ANSWER
    assert [(e.status, e.error.code) for e in exchanges.seen] == [(400, "content_blocked")]


async def test_a_phrase_split_across_stream_chunks_ends_the_stream_before_its_second_half(
        fake_upstream, openai_client, http_session, plugins, exchanges):
    upstream = await openai_upstream(fake_upstream, "unused")
    client = await openai_client(gateway(upstream, blocklist("after_request")), pm=plugins)

    stream = await client.chat.completions.create(model=MODEL, messages=ask("what is it?"),
                                                  stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        async for event in stream:
            received.append(event.choices[0].delta.content)
    assert received == ["The ", "secret c"]
    assert info.value.code == "content_blocked"
    assert info.value.body == BLOCKED_IN_ANSWER

    async with http_session.post(f"{client.base_url}chat/completions", json={
            "model": MODEL, "stream": True, "messages": ask("what is it?")}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        raw = await resp.read()
    events = frames(raw)
    assert [orjson.loads(e.removeprefix(b"data: "))["choices"][0]["delta"]["content"]
            for e in events[:2]] == ["The ", "secret c"]
    assert events[2] == b"data: " + orjson.dumps({"error": BLOCKED_IN_ANSWER})
    assert events[3:] == [b"data: [DONE]"]
    assert b"ode is" not in raw and b"42" not in raw  # the upstream sent them; they stay there

    assert [(e.stream, e.status, e.error.code) for e in exchanges.seen] == [
        (True, 400, "content_blocked"), (True, 400, "content_blocked")]


OLDER_MAX_TOKEN = {"name": "max-token", "type": "guardrail", "stage": "before_request",
                   "enabled": True,
                   "config": {"max_tokens": 4096, "max_messages": 50, "max_input_length": 0}}


@pytest.mark.parametrize(("ask_for", "code", "message"), [
    ({"max_tokens": 5000, "messages": ask("hi")}, "max_tokens_exceeded",
     "max_tokens 5000 exceeds limit of 4096"),
    ({"max_completion_tokens": 8192, "messages": ask("hi")}, "max_tokens_exceeded",
     "max_completion_tokens 8192 exceeds limit of 4096"),
    ({"messages": ask("hi") * 51}, "too_many_messages", "message count 51 exceeds limit of 50"),
])
async def test_the_older_max_token_config_refuses_with_its_messages(
        fake_upstream, openai_client, plugins, exchanges, ask_for, code, message):
    upstream = await openai_upstream(fake_upstream, "fine")
    client = await openai_client(gateway(upstream, OLDER_MAX_TOKEN), pm=plugins)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model=MODEL, stream=stream, **ask_for)
        assert info.value.status_code == 400
        assert info.value.code == code
        assert info.value.body["message"] == f"request rejected by max-token: {message}"
    assert upstream.requests == []
    assert [(e.status, e.error.code) for e in exchanges.seen] == [(400, code), (400, code)]


async def test_the_older_max_token_config_lets_requests_within_its_limits_through(
        fake_upstream, openai_client, plugins):
    upstream = await openai_upstream(fake_upstream, "fine")
    client = await openai_client(gateway(upstream, OLDER_MAX_TOKEN), pm=plugins)
    reply = await client.chat.completions.create(
        model=MODEL, max_tokens=4096, messages=ask("x" * 10_000) * 50)  # input length is off
    assert reply.choices[0].message.content == "fine"
    assert len(upstream.requests) == 1


async def test_input_tokens_are_limited_end_to_end(fake_upstream, openai_client, plugins):
    upstream = await openai_upstream(fake_upstream, "fine")
    client = await openai_client(gateway(upstream, {
        "name": "max-tokens", "config": {"max_input_tokens": 100}}), pm=plugins)
    await client.chat.completions.create(model="claude-sonnet-4-5", messages=ask("x" * 360))
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="claude-sonnet-4-5",
                                             messages=ask("x" * 400))
    assert info.value.code == "input_tokens_exceeded"
    assert info.value.body["message"] == \
        "request rejected by max-tokens: estimated input tokens 107 exceeds limit of 100"
