"""The exact-match cache key and what is cacheable: order matters, every parameter matters,
non-semantic fields do not, scopes never mix."""

import copy

import pytest
from ferro import (
    CacheEntry,
    CacheOptions,
    ChatRequest,
    ChatResponse,
    CompletionsRequest,
    EmbeddingsRequest,
    Identity,
    RequestContext,
    ResponseCache,
)
from ferro.caching import NON_SEMANTIC_FIELDS

BASE = {"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "hi"},
    {"role": "user", "content": "what is 2+2?"},
]}


def key(body, identity=None, request=ChatRequest, **options):
    cache = ResponseCache(CacheOptions(**options), 60)
    return cache.key(RequestContext(request(copy.deepcopy(body)), "r", identity))


def test_the_same_request_has_the_same_key_whatever_the_order_of_its_fields():
    reordered = {"messages": BASE["messages"], "model": BASE["model"]}
    assert key(BASE) == key(reordered)
    assert len(key(BASE)) == 64


def test_message_order_matters():
    swapped = {**BASE, "messages": [BASE["messages"][i] for i in (0, 2, 1, 3)]}
    assert key(swapped) != key(BASE)


@pytest.mark.parametrize(("field", "value"), [
    ("model", "gpt-4o"), ("max_tokens", 10), ("max_completion_tokens", 10), ("top_p", 0.5),
    ("stop", ["\n"]), ("seed", 7), ("n", 1), ("tool_choice", "none"),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
    ("response_format", {"type": "json_object"}), ("logprobs", True), ("top_logprobs", 2),
    ("presence_penalty", 0.5), ("frequency_penalty", 0.5), ("logit_bias", {"50256": -100}),
    ("parallel_tool_calls", False), ("reasoning_effort", "low"), ("temperature", 0),
    ("modalities", ["text"]), ("prediction", {"type": "content", "content": "x"}),
    ("an_unknown_field", 1),
])
def test_every_parameter_that_can_change_the_answer_is_in_the_key(field, value):
    assert key({**BASE, field: value}) != key(BASE)


def test_a_changed_message_or_content_part_changes_the_key():
    edited = copy.deepcopy(BASE)
    edited["messages"][-1]["content"] = [{"type": "text", "text": "what is 2+2?"}]
    assert key(edited) != key(BASE)
    named = copy.deepcopy(BASE)
    named["messages"][1]["name"] = "ann"
    assert key(named) != key(BASE)


@pytest.mark.parametrize("field", NON_SEMANTIC_FIELDS)
def test_non_semantic_fields_are_not_in_the_key(field):
    value = {"stream": True, "stream_options": {"include_usage": True}, "store": False,
             "metadata": {"run": "7"}, "service_tier": "auto"}.get(field, "someone")
    assert key({**BASE, field: value}) == key(BASE)


def test_the_exclusions_are_configurable():
    assert key({**BASE, "user": "u1"}, exclude=[]) != key(BASE, exclude=[])
    assert key({**BASE, "seed": 1}, exclude=["seed"]) == key(BASE, exclude=["seed"])


def test_scopes_never_mix():
    ann, bob = Identity("key-ann"), Identity("key-bob")
    assert key(BASE, ann) != key(BASE, bob)
    assert key(BASE, ann) != key(BASE), "a key's answers are not an anonymous caller's"
    acme1 = Identity("k1", attributes={"tenant": "acme"})
    acme2 = Identity("k2", attributes={"tenant": "acme"})
    other = Identity("k3", attributes={"tenant": "globex"})
    assert key(BASE, acme1, scope="tenant") == key(BASE, acme2, scope="tenant")
    assert key(BASE, acme1, scope="tenant") != key(BASE, other, scope="tenant")
    assert key(BASE, Identity("k1"), scope="tenant") != key(BASE, Identity("k2"),
                                                            scope="tenant")
    assert key(BASE, ann, scope="global") == key(BASE, bob, scope="global")


def test_the_tenant_scope_does_not_collide_with_a_key_named_like_it():
    tenant = Identity("k1", attributes={"tenant": "acme"})
    assert key(BASE, tenant, scope="tenant") != key(BASE, Identity("acme"), scope="tenant")


def test_operations_never_mix():
    text = {"model": "m", "input": "hello"}
    assert key(text, request=EmbeddingsRequest) != key({"model": "m", "prompt": "hello"},
                                                       request=CompletionsRequest)
    assert key(text, request=EmbeddingsRequest) != key(
        {**text, "encoding_format": "base64"}, request=EmbeddingsRequest)


@pytest.mark.parametrize("extra", [
    {"n": 2}, {"temperature": 0.7}, {"store": True},
])
def test_sampled_and_stored_requests_are_not_cached_by_default(extra):
    assert key({**BASE, **extra}) is None


def test_tool_executing_turns_are_not_cached_by_default():
    turn = copy.deepcopy(BASE)
    turn["messages"] += [
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}]
    assert key(turn) is None
    assert key(turn, cache_tool_turns=True) is not None


def test_what_is_cacheable_is_configurable():
    assert key({**BASE, "temperature": 0.7}, max_temperature=1.0) is not None
    assert key({**BASE, "temperature": 0}) is not None
    assert key(BASE, operations=["embeddings"]) is None
    assert key({"model": "m", "input": "x"}, request=EmbeddingsRequest) is not None


def test_a_scope_must_be_known():
    with pytest.raises(ValueError, match="scope must be one of"):
        CacheOptions(scope="everyone")


async def test_answers_that_call_tools_or_are_too_large_are_not_stored():
    stored = []

    class Recording(ResponseCache):
        async def store(self, key, entry):
            stored.append(entry)

    cache = Recording(CacheOptions(max_entry_bytes=400), 60)
    ctx = RequestContext(ChatRequest(copy.deepcopy(BASE)), "r")
    tool = ChatResponse({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                                              "function": {"name": "f"}}]}}]})
    await cache.put("k", ctx, tool)
    await cache.put("k", ctx, ChatResponse({"choices": [], "text": "x" * 500}))
    assert stored == []
    mentions = ChatResponse(raw=b'{"choices":[{"index":0,"message":{"role":"assistant",'
                                b'"content":"no \\"tool_calls\\" here"}}]}')
    await cache.put("k", ctx, mentions)
    assert [e.raw for e in stored] == [mentions.to_json()]


def test_an_entry_survives_bytes_and_refuses_foreign_data():
    entry = CacheEntry("embeddings", 1700000000.5, b'{"object":"list","data":[]}')
    back = CacheEntry.from_bytes(entry.to_bytes())
    assert back == entry
    assert type(back.answer()).__name__ == "EmbeddingsResponse"
    assert back.answer().body == {"object": "list", "data": []}
    assert back.age(1700000010.5) == 10.0
    for junk in (b"", b"not json\n{}", b'[2,"chat",1]\n{}', b'[1,"chat",1]\n', b"{}\n{}"):
        assert CacheEntry.from_bytes(junk) is None
