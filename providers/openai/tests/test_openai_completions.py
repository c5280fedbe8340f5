"""Legacy completions through the OpenAI provider: OpenAI's own POST /v1/completions, the
body passed through whole, streams relayed raw with usage, errors, and the official client
end to end."""

import pytest
from aiohttp import web
from ferro import CompletionsRequest, RawFrames, UpstreamError
from ferro.testing import collect, make_provider, single_provider, sse_body

MODEL = "gpt-3.5-turbo-instruct"
ROUTE = "POST /v1/completions"
USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}

EVERY_FIELD = {
    "model": MODEL, "prompt": ["Say this", "Say that"], "suffix": " END", "echo": True,
    "logprobs": 2, "best_of": 3, "n": 2, "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
    "stop": ["\n"], "presence_penalty": 0.1, "frequency_penalty": 0.2, "seed": 7,
    "logit_bias": {"50256": -100}, "user": "u-1", "some_future_field": {"kept": True},
}


def reply(text="is a test"):
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": MODEL,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": USAGE}


def chunk(text, finish=None):
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": MODEL,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}


STREAM = sse_body(chunk("is"), chunk(" a"), chunk(" test", "stop"),
                  {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": MODEL,
                   "choices": [], "usage": USAGE}, b"[DONE]")


@pytest.fixture
def openai_at(http_session):
    return lambda upstream: make_provider(
        "openai", {"api_key": "sk-test", "base_url": upstream.url + "/v1"}, http_session)


async def test_every_field_reaches_openai_completions(fake_upstream, openai_at):
    upstream = await fake_upstream({ROUTE: reply()})
    response = await openai_at(upstream).completions(CompletionsRequest(dict(EVERY_FIELD)))
    (call,) = upstream.requests
    assert call.path == "/v1/completions"
    assert call.headers["Authorization"] == "Bearer sk-test"
    assert call.json() == EVERY_FIELD
    assert response.body["choices"][0]["text"] == "is a test"
    assert response.usage.total_tokens == 7
    assert response.body["provider"] == "openai"


async def test_a_stream_is_relayed_raw_and_always_asks_for_usage(fake_upstream, openai_at):
    upstream = await fake_upstream({ROUTE: STREAM})
    request = CompletionsRequest({"model": MODEL, "prompt": "This", "stream": True,
                                  "logprobs": 1})
    items = [item async for item in openai_at(upstream).stream_completions(request)]
    assert isinstance(items[0], RawFrames)  # content chunks pass without being parsed
    assert items[0].frames == sse_body(chunk("is"), chunk(" a"), chunk(" test", "stop"))
    got = await collect(openai_at(upstream).stream_completions(request))
    assert [c["choices"][0]["text"] for c in got[:3]] == ["is", " a", " test"]
    assert got[-1] == {"id": "cmpl-1", "object": "text_completion", "created": 1,
                       "model": MODEL, "choices": [], "usage": USAGE}
    sent = upstream.requests[0].json()
    assert sent == {"model": MODEL, "prompt": "This", "stream": True, "logprobs": 1,
                    "stream_options": {"include_usage": True}}


async def test_a_rate_limit_keeps_its_status_and_retry_after(fake_upstream, openai_at):
    async def limited(request):
        return web.json_response({"error": {"message": "Rate limit reached",
                                             "type": "requests"}},
                                 status=429, headers={"Retry-After": "5"})

    upstream = await fake_upstream({ROUTE: limited})
    for stream in (False, True):
        request = CompletionsRequest({"model": MODEL, "prompt": "x", "stream": stream})
        with pytest.raises(UpstreamError) as info:
            if stream:
                await collect(openai_at(upstream).stream_completions(request))
            else:
                await openai_at(upstream).completions(request)
        assert info.value.status == 429 and info.value.headers == {"Retry-After": "5"}


async def test_the_openai_sdk_streams_completions_with_usage(fake_upstream, openai_client):
    upstream = await fake_upstream({ROUTE: STREAM})
    client = await openai_client(single_provider("openai", api_key="k",
                                                 base_url=upstream.url + "/v1"))
    stream = await client.completions.create(model=MODEL, prompt="This", stream=True,
                                             stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "is a test"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 7


async def test_the_openai_sdk_gets_a_whole_completion(fake_upstream, openai_client):
    upstream = await fake_upstream({ROUTE: reply("done")})
    client = await openai_client(single_provider("openai", api_key="k",
                                                 base_url=upstream.url + "/v1"))
    result = await client.completions.create(model=MODEL, prompt="x", suffix="y", echo=True)
    assert result.choices[0].text == "done" and result.usage.prompt_tokens == 5
    assert upstream.requests[0].json() == {"model": MODEL, "prompt": "x", "suffix": "y",
                                           "echo": True}
