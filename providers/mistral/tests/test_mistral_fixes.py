"""Mistral: message names and roles, log probabilities, prompt cache key and service tier,
checked against mistralai 3.7.0's request and response models."""

import pytest
from ferro import ChatRequest, InvalidRequestError
from ferro.testing import collect, make_provider, sse_body
from ferro_provider_mistral._wire import mistral_body, openai_logprobs

MODEL = "mistral-small-latest"
PATH = "POST /v1/chat/completions"


def body(messages, **extra):
    return {"model": MODEL, "messages": messages, **extra}


def test_name_is_left_out_of_user_and_system_messages_but_kept_on_tool_messages():
    messages = [
        {"role": "system", "content": "be brief", "name": "setup"},
        {"role": "user", "content": "hi", "name": "alice"},
        {"role": "assistant", "content": None, "name": "bot", "tool_calls": [
            {"id": "abcDEF123", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "abcDEF123", "name": "f", "content": "42"},
    ]
    out = mistral_body(body(messages))["messages"]
    assert out[0] == {"role": "system", "content": "be brief"}
    assert out[1] == {"role": "user", "content": "hi"}
    assert "name" not in out[2]
    assert out[3] is messages[3]  # Mistral's ToolMessage has a name
    assert messages[1]["name"] == "alice"  # the client's request is not mutated


def test_developer_messages_are_sent_as_system():
    messages = [{"role": "developer", "content": "rules", "name": "ops"},
                {"role": "user", "content": "hi"}]
    out = mistral_body(body(messages))["messages"]
    assert out == [{"role": "system", "content": "rules"}, {"role": "user", "content": "hi"}]
    assert out[1] is messages[1]
    assert messages[0]["role"] == "developer"


@pytest.mark.parametrize(("extra", "sent"), [
    ({"logprobs": True, "top_logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
    ({"prompt_cache_key": "agent-7"}, {"prompt_cache_key": "agent-7"}),
    ({"service_tier": "auto"}, {"service_tier": "auto"}),
    ({"service_tier": "default"}, {"service_tier": "standard_only"}),
    ({"service_tier": "priority"}, {"service_tier": "auto"}),
    ({"service_tier": "standard_only"}, {"service_tier": "standard_only"}),
    ({"service_tier": None}, {"service_tier": None}),
])
def test_fields_mistral_now_takes_are_forwarded(extra, sent):
    messages = [{"role": "user", "content": "hi"}]
    assert mistral_body(body(messages, **extra)) == body(messages, **sent)


@pytest.mark.parametrize("tier", ["flex", "scale"])
def test_service_tiers_mistral_does_not_have_are_refused(tier):
    with pytest.raises(InvalidRequestError, match=f"service_tier '{tier}'") as info:
        mistral_body(body([{"role": "user", "content": "hi"}], service_tier=tier))
    assert info.value.status == 400


def entry(token, logprob, top=None):
    out = {"token": token, "logprob": logprob, "bytes": list(token.encode()), "token_id": 7}
    if top is not None:
        out["top_logprobs"] = top
    return out


def test_logprobs_get_openais_top_logprobs_list():
    alt = {"token": "Hey", "logprob": -1.5, "bytes": [72, 101, 121], "token_id": 9}
    choices = [{"logprobs": {"content": [entry("Hi", -0.1, [alt]), entry("!", -0.2, None),
                                          entry(".", -0.3)]}},
               {"logprobs": None}, {}]
    openai_logprobs(choices)
    content = choices[0]["logprobs"]["content"]
    assert [e["top_logprobs"] for e in content] == [[alt], [], []]
    assert content[0]["token_id"] == 7  # Mistral's extra field is kept


@pytest.fixture
def mistral_at(http_session):
    return lambda upstream: make_provider(
        "mistral", {"api_key": "k", "base_url": upstream.url + "/v1"}, http_session)


async def test_the_upstream_body_and_the_answers_logprobs(fake_upstream, mistral_at):
    answer = {"id": "m1", "object": "chat.completion", "model": MODEL, "choices": [{
        "index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "Hi", "tool_calls": None},
        "logprobs": {"content": [entry("Hi", -0.1, None)]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
    upstream = await fake_upstream({PATH: answer})
    response = await mistral_at(upstream).chat(ChatRequest(body(
        [{"role": "developer", "content": "rules"},
         {"role": "user", "content": "hi", "name": "alice"}],
        logprobs=True, prompt_cache_key="k1", service_tier="default", user="u1")))
    sent = upstream.requests[0].json()
    assert sent["messages"] == [{"role": "system", "content": "rules"},
                                {"role": "user", "content": "hi"}]
    assert sent["logprobs"] is True and sent["prompt_cache_key"] == "k1"
    assert sent["service_tier"] == "standard_only" and "user" not in sent
    logprobs = response.body["choices"][0]["logprobs"]["content"]
    assert logprobs[0]["top_logprobs"] == [] and logprobs[0]["logprob"] == -0.1


async def test_streamed_logprobs_get_openais_shape(fake_upstream, mistral_at):
    def chunk(delta, finish=None, **extra):
        return {"id": "m1", "object": "chat.completion.chunk", "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}]}

    stream = sse_body(chunk({"role": "assistant", "content": ""}),
                      chunk({"content": "Hi"}, logprobs={"content": [entry("Hi", -0.1, None)]}),
                      chunk({"content": ""}, "stop"), b"[DONE]")
    upstream = await fake_upstream({PATH: stream})
    got = await collect(mistral_at(upstream).stream(ChatRequest(body(
        [{"role": "user", "content": "hi"}], logprobs=True, stream=True))))
    assert got[1]["choices"][0]["logprobs"]["content"][0]["top_logprobs"] == []
    assert upstream.requests[0].json()["logprobs"] is True
