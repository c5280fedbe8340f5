"""DeepSeek's request limits and usage fields (api-docs.deepseek.com)."""

import pytest
from ferro import InvalidRequestError, UpstreamError
from ferro.testing import make_provider
from ferro_provider_deepseek._wire import deepseek_body, usage_with_cached_tokens

BASE = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("extra", "sent"), [
    ({}, {}),
    ({"n": 1}, {"n": 1}),
    ({"max_completion_tokens": 64}, {"max_tokens": 64}),
    ({"max_tokens": 8, "max_completion_tokens": 64}, {"max_tokens": 64}),
    ({"response_format": {"type": "json_object"}, "stream": True,
      "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": 2,
      "tool_choice": "required", "thinking": {"type": "enabled"}},
     {"response_format": {"type": "json_object"}, "stream": True,
      "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": 2,
      "tool_choice": "required", "thinking": {"type": "enabled"}}),
])
def test_request_translation(extra, sent):
    body = {**BASE, **extra}
    before = dict(body)
    assert deepseek_body(body) == {**BASE, **sent}
    assert body == before


@pytest.mark.parametrize(("extra", "named"), [
    ({"n": 3}, "n=3"),
])
def test_refused(extra, named):
    with pytest.raises(InvalidRequestError) as info:
        deepseek_body({**BASE, **extra})
    assert named in info.value.message and info.value.status == 400


@pytest.mark.parametrize(("usage", "cached", "changed"), [
    ({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
      "prompt_cache_hit_tokens": 6, "prompt_cache_miss_tokens": 4}, 6, True),
    ({"prompt_tokens": 10, "prompt_cache_hit_tokens": 6, "prompt_cache_miss_tokens": 4,
      "prompt_tokens_details": {"cached_tokens": 6}}, 6, False),
    ({"prompt_tokens": 10, "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 10}, None,
     False),
    ({"prompt_tokens": 10}, None, False),
])
def test_cache_hits_become_cached_tokens(usage, cached, changed):
    assert usage_with_cached_tokens(usage) is changed
    assert (usage.get("prompt_tokens_details") or {}).get("cached_tokens") == cached
    assert usage["prompt_tokens"] == 10  # prompt_tokens already includes cache hits


def test_overloaded_finish_is_a_retryable_503():
    provider = make_provider("deepseek", {"api_key": "k"}, None)
    with pytest.raises(UpstreamError) as info:
        provider.adapt_response({"choices": [{"finish_reason": "insufficient_system_resource"}]})
    assert (info.value.status, info.value.code, info.value.retryable) == (
        503, "upstream_overloaded", True)
    body = {"choices": [{"finish_reason": "stop"}, {"finish_reason": None}]}
    provider.adapt_response(body)
    assert [c["finish_reason"] for c in body["choices"]] == ["stop", None]
