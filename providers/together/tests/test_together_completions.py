"""Legacy completions through Together's own POST /v1/completions, against a local fake:
the body Together accepts, what it cannot express, "eos" as "stop", and usage that rides on
the last content chunk, split off by the gateway as OpenAI sends it."""

import pytest
from aiohttp import web
from ferro import CompletionsRequest, InvalidRequestError, UpstreamError
from ferro.testing import collect, make_provider, single_provider, sse_body
from ferro_provider_together._wire import completions_body

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
ROUTE = "POST /v1/completions"
USAGE = {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}


def chunk(text, finish=None, use=None):
    """Together's completion chunk: usage null until the last, which has the finish too."""
    return {"id": "oB1", "object": "completion.chunk", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish,
                         "seed": None, "delta": {"token_id": 1, "role": "assistant",
                                                 "content": text}}],
            "usage": use}


STREAM = sse_body(chunk(" blue"), chunk(".", "eos", USAGE), b"[DONE]")
REPLY = {"id": "oB1", "object": "text.completion", "created": 1, "model": MODEL,
         "prompt": [], "choices": [{"index": 0, "text": " blue.", "finish_reason": "eos",
                                    "logprobs": None, "seed": 5}], "usage": USAGE}


@pytest.fixture
def together_at(http_session):
    return lambda upstream: make_provider(
        "together", {"api_key": "tk", "base_url": upstream.url + "/v1"}, http_session)


async def test_the_body_together_accepts_and_an_openai_answer(fake_upstream, together_at):
    upstream = await fake_upstream({ROUTE: REPLY})
    body = {"model": MODEL, "prompt": ["Violets are"], "max_tokens": 5, "stop": "\n",
            "logprobs": 1, "n": 1, "seed": 5, "temperature": 0.2, "top_p": 0.9,
            "presence_penalty": 0.1, "frequency_penalty": 0.1, "logit_bias": {"1": -1},
            "echo": False, "suffix": None, "best_of": 1, "user": "u-1"}
    response = await together_at(upstream).completions(CompletionsRequest(dict(body)))
    (call,) = upstream.requests
    assert call.path == "/v1/completions"
    assert call.headers["Authorization"] == "Bearer tk"
    assert call.json() == {"model": MODEL, "prompt": "Violets are", "max_tokens": 5,
                           "stop": ["\n"], "logprobs": 1, "n": 1, "seed": 5,
                           "temperature": 0.2, "top_p": 0.9, "presence_penalty": 0.1,
                           "frequency_penalty": 0.1, "logit_bias": {"1": -1}, "echo": False,
                           "user": "u-1"}
    assert response.body["object"] == "text_completion"
    assert response.body["choices"][0]["finish_reason"] == "stop"
    assert response.usage.total_tokens == 8


@pytest.mark.parametrize(("extra", "what"), [
    ({"echo": True}, "echo"),
    ({"suffix": " END"}, "suffix"),
    ({"best_of": 3}, "best_of=3"),
    ({"prompt": ["a", "b"]}, "2 prompts in one request"),
    ({"prompt": [1, 2, 3]}, "token arrays in prompt"),
    ({"prompt": [[1], [2]]}, "token arrays in prompt"),
])
async def test_what_together_cannot_express_is_a_400(fake_upstream, together_at, extra, what):
    upstream = await fake_upstream({ROUTE: REPLY})
    request = CompletionsRequest({"model": MODEL, "prompt": "x", **extra})
    with pytest.raises(InvalidRequestError, match=f"together cannot express {what}"):
        await together_at(upstream).completions(request)
    assert upstream.requests == []


def test_completions_body_never_mutates():
    plain = {"model": MODEL, "prompt": "x", "stop": ["a"]}
    assert completions_body(plain) is plain
    body = {"model": MODEL, "prompt": ["x"], "stop": "a"}
    assert completions_body(body) == {"model": MODEL, "prompt": "x", "stop": ["a"]}
    assert body == {"model": MODEL, "prompt": ["x"], "stop": "a"}


async def test_a_stream_maps_eos_and_keeps_usage_on_the_last_chunk(fake_upstream,
                                                                   together_at):
    upstream = await fake_upstream({ROUTE: STREAM})
    request = CompletionsRequest({"model": MODEL, "prompt": "Violets are", "stream": True,
                                  "stream_options": {"include_usage": True}})
    got = await collect(together_at(upstream).stream_completions(request))
    assert got == [chunk(" blue"), chunk(".", "stop", USAGE)]
    assert upstream.requests[0].json() == {"model": MODEL, "prompt": "Violets are",
                                           "stream": True}


async def test_the_openai_sdk_gets_usage_in_its_own_chunk(fake_upstream, openai_client):
    upstream = await fake_upstream({ROUTE: STREAM})
    client = await openai_client(single_provider("together", api_key="tk",
                                                 base_url=upstream.url + "/v1"))
    stream = await client.completions.create(model=MODEL, prompt="Violets are", stream=True,
                                             stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert [(c.choices[0].text, c.choices[0].finish_reason) for c in chunks[:-1]] == [
        (" blue", None), (".", "stop")]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 8
    assert chunks[-2].usage is None

    quiet = await client.completions.create(model=MODEL, prompt="Violets are", stream=True)
    quiet_chunks = [c async for c in quiet]
    assert len(quiet_chunks) == 2 and all(c.usage is None and c.choices for c in quiet_chunks)


async def test_a_rate_limit_keeps_its_status_and_retry_after(fake_upstream, together_at):
    async def limited(request):
        return web.json_response({"error": {"message": "rate limit exceeded",
                                             "type": "rate_limit"}},
                                 status=429, headers={"Retry-After": "4"})

    upstream = await fake_upstream({ROUTE: limited})
    with pytest.raises(UpstreamError) as info:
        await collect(together_at(upstream).stream_completions(
            CompletionsRequest({"model": MODEL, "prompt": "x", "stream": True})))
    assert info.value.status == 429 and info.value.headers == {"Retry-After": "4"}


def test_together_serves_embeddings_and_its_own_completions():
    provider = make_provider("together", {"api_key": "tk"}, None)
    assert {"chat", "embeddings", "completions"} <= provider.operations
    assert provider.completions_upstream
    assert provider.url(provider.completions_path, MODEL) == (
        "https://api.together.xyz/v1/completions")
