from ferro import ChatRequest
from ferro.testing import collect, make_provider
from ferro_provider_echo.provider import reply_for


def test_reply_echoes_last_user_message_and_counts_words():
    request = ChatRequest({"model": "any", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "echo: first"},
        {"role": "user", "content": [{"type": "text", "text": "hello there"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
    ]})
    text, usage = reply_for(request)
    assert text == "echo: hello there"
    assert usage.prompt_tokens == 2 + 1 + 2 + 2
    assert usage.completion_tokens == 3
    assert usage.total_tokens == 10


async def test_stream_spells_the_same_text_in_several_chunks():
    provider = make_provider("echo", {}, None)
    request = ChatRequest({"model": "whatever", "stream": True,
                           "messages": [{"role": "user", "content": "one two three"}]})
    chunks = await collect(provider.stream(request))
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(x or "" for x in contents) == "echo: one two three"
    assert len([x for x in contents if x]) == 4
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    reply = await provider.chat(ChatRequest({**request.body, "stream": False}))
    assert reply.body["choices"][0]["message"]["content"] == "echo: one two three"
    assert reply.body["id"] == chunks[0]["id"]


async def test_serves_any_model(ferro_client):
    client = await ferro_client({"providers": {"demo": {"type": "echo"}},
                                 "targets": [{"virtual_key": "demo"}]})
    resp = await client.post("/v1/chat/completions", json={
        "model": "made-up-model", "messages": [{"role": "user", "content": "ping"}]})
    assert resp.status == 200
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "echo: ping"
    assert body["model"] == "made-up-model"
    assert body["provider"] == "demo"


async def test_embeddings_are_deterministic_unit_vectors():
    import base64
    import struct

    import pytest
    from ferro import EmbeddingsRequest, InvalidRequestError

    provider = make_provider("echo", {}, None)
    answer = await provider.embeddings(EmbeddingsRequest(
        {"model": "e", "input": ["same", "other", "same"], "dimensions": 40}))
    vectors = [d["embedding"] for d in answer.body["data"]]
    assert [len(v) for v in vectors] == [40, 40, 40]
    assert vectors[0] == vectors[2] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-9
    assert answer.body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    encoded = await provider.embeddings(EmbeddingsRequest(
        {"model": "e", "input": "same", "encoding_format": "base64"}))
    floats = struct.unpack("<16f", base64.b64decode(encoded.body["data"][0]["embedding"]))
    plain = await provider.embeddings(EmbeddingsRequest({"model": "e", "input": "same"}))
    assert floats == pytest.approx(plain.body["data"][0]["embedding"], rel=1e-6)
    with pytest.raises(InvalidRequestError, match="token arrays"):
        await provider.embeddings(EmbeddingsRequest({"model": "e", "input": [[1, 2]]}))
