"""Legacy completions through Azure OpenAI, against a local fake of a deployment's
/completions: the body passed through whole, streams with usage where the api-version takes
stream_options, Azure's prompt-filter preamble, and errors."""

import pytest
from aiohttp import web
from ferro import CompletionsRequest, UpstreamError
from ferro.testing import collect, make_provider, sse_body

DEPLOYMENT = "instruct-prod"
PATH = f"/openai/deployments/{DEPLOYMENT}/completions"
MODEL = "gpt-35-turbo-instruct"
USAGE = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
FILTERS = {"hate": {"filtered": False, "severity": "safe"}}


def chunk(text, finish=None):
    return {"id": "cmpl-A1", "object": "text_completion", "created": 1, "model": MODEL,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish,
                         "content_filter_results": FILTERS}]}


PREAMBLE = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTERS}]}
STREAM = sse_body(PREAMBLE, chunk("Hello"), chunk(" there", "stop"),
                  {**chunk(""), "choices": [], "usage": USAGE}, b"[DONE]")


@pytest.fixture
def azure_at(http_session):
    return lambda upstream, **extra: make_provider("azure-openai", {
        "api_key": "ak", "base_url": upstream.url, "deployments": {MODEL: DEPLOYMENT},
        **extra}, http_session)


async def test_every_field_reaches_the_deployment(fake_upstream, azure_at):
    reply = {"id": "cmpl-A1", "object": "text_completion", "created": 1, "model": MODEL,
             "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTERS}],
             "choices": [{"text": "Hi", "index": 0, "logprobs": None, "finish_reason": "stop",
                          "content_filter_results": FILTERS}], "usage": USAGE}
    upstream = await fake_upstream({f"POST {PATH}": reply})
    body = {"model": MODEL, "prompt": ["a", "b"], "suffix": "!", "echo": True, "logprobs": 3,
            "best_of": 2, "n": 1, "max_tokens": 9, "stop": "\n", "seed": 3, "user": "u-1",
            "logit_bias": {"50256": -100}, "completion_config": "x"}
    response = await azure_at(upstream).completions(CompletionsRequest(dict(body)))
    (call,) = upstream.requests
    assert (call.path, call.query) == (PATH, {"api-version": "2024-10-21"})
    assert call.headers["api-key"] == "ak"
    assert call.json() == body
    assert response.body["choices"][0]["content_filter_results"] == FILTERS
    assert response.usage.total_tokens == 6


async def test_a_stream_asks_for_usage_and_drops_the_prompt_filter_preamble(fake_upstream,
                                                                           azure_at):
    upstream = await fake_upstream({f"POST {PATH}": STREAM})
    request = CompletionsRequest({"model": MODEL, "prompt": "x", "stream": True})
    got = await collect(azure_at(upstream).stream_completions(request))
    assert got == [chunk("Hello"), chunk(" there", "stop"),
                   {**chunk(""), "choices": [], "usage": USAGE}]
    assert upstream.requests[0].json()["stream_options"] == {"include_usage": True}


async def test_older_api_versions_get_no_stream_options_for_completions(fake_upstream,
                                                                        azure_at):
    upstream = await fake_upstream({f"POST {PATH}": STREAM})
    provider = azure_at(upstream, api_version="2024-06-01")
    request = CompletionsRequest({"model": MODEL, "prompt": "x", "stream": True,
                                  "stream_options": {"include_usage": True}})
    await collect(provider.stream_completions(request))
    assert "stream_options" not in upstream.requests[0].json()
    assert upstream.requests[0].query == {"api-version": "2024-06-01"}


async def test_a_rate_limit_keeps_its_status_and_retry_after(fake_upstream, azure_at):
    async def limited(request):
        return web.json_response({"error": {"code": "429", "message": "Rate limit"}},
                                 status=429, headers={"Retry-After": "9"})

    upstream = await fake_upstream({f"POST {PATH}": limited})
    with pytest.raises(UpstreamError) as info:
        await collect(azure_at(upstream).stream_completions(
            CompletionsRequest({"model": MODEL, "prompt": "x", "stream": True})))
    assert info.value.status == 429 and info.value.headers == {"Retry-After": "9"}
