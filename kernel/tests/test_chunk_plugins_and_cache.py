"""Plugins that see each stream chunk (change it, drop it, end the stream), and a cache on
both sides of the call, for streams too."""

import attrs
import orjson
import pytest
from ferro import BaseProvider, Provider, RejectedError, ResponseCache, hookimpl
from ferro.app import PIPELINE
from ferro.testing import StubProvider, sse_body, stub_config

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


class Masker:
    """on_chunk: masks a word, drops chunks that only say 'drop', ends on 'stop-here'."""

    @attrs.define
    class Options:
        word: str

    def __init__(self, options):
        self.word = options.word
        self.seen = 0

    async def on_chunk(self, ctx, chunk):
        self.seen += 1
        data = chunk.as_dict()
        for choice in data.get("choices") or ():
            content = (choice.get("delta") or {}).get("content") or ""
            if content.strip() == "drop":
                return None
            if "stop-here" in content:
                raise RejectedError("the answer broke a rule", code="output_blocked")
            if self.word in content:
                choice["delta"]["content"] = content.replace(self.word, "*" * len(self.word))
        return chunk


class DictCache(ResponseCache):
    """A dict, on the kernel's cache base; keeps what it stores."""

    instances = []

    def __init__(self, options, ttl):
        super().__init__(options, ttl)
        self.data = {}
        self.stored = []
        DictCache.instances.append(self)

    async def get(self, key):
        return self.data.get(key)

    async def store(self, key, entry):
        self.stored.append(entry.answer())
        self.data[key] = entry


class Plugins:
    @hookimpl
    def register_plugins(self, register):
        register("masker", Masker)

    @hookimpl
    def register_caches(self, register):
        register("dict", DictCache)


@pytest.fixture
def pm(stub_plugins):
    stub_plugins.register(Plugins(), name="test-plugins")
    return stub_plugins


def stream_text(body: str) -> str:
    text = ""
    for line in body.splitlines():
        if line.startswith("data: {"):
            for choice in orjson.loads(line[6:]).get("choices") or ():
                text += (choice.get("delta") or {}).get("content") or ""
    return text


async def test_a_chunk_plugin_changes_and_drops_chunks(ferro_client, pm):
    cfg = stub_config("a", reply="my secret is drop here")
    cfg["plugins"] = [{"name": "masker", "stage": "after_request", "config": {"word": "secret"}}]
    client = await ferro_client(cfg, pm=pm)
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    body = await resp.text()
    assert stream_text(body) == "my ****** is here "
    assert body.endswith("data: [DONE]\n\n")


async def test_a_chunk_plugin_ends_the_stream_with_its_error(ferro_client, pm):
    cfg = stub_config("a", reply="fine then stop-here and more")
    cfg["plugins"] = [{"name": "masker", "stage": "after_request", "config": {"word": "x"}}]
    client = await ferro_client(cfg, pm=pm)
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    body = await resp.text()
    assert stream_text(body) == "fine then "
    frames = [line for line in body.splitlines() if line.startswith("data: ")]
    error = orjson.loads(frames[-2][6:])["error"]
    assert error["code"] == "output_blocked"
    assert "request rejected by masker" in error["message"]
    assert frames[-1] == "data: [DONE]"
    assert "and more" not in body


async def test_chunk_plugins_see_raw_relayed_frames_parsed(ferro_client, fake_upstream):
    from ferro import make_plugin_manager

    chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
              for w in ("a secret", " word")]
    up = await fake_upstream({"POST /chat/completions": sse_body(*chunks, b"[DONE]")})
    pm = make_plugin_manager(env={})
    pm.register(Plugins(), name="test-plugins")
    client = await ferro_client({
        "providers": {"o": {"type": "openai", "api_key": "k", "base_url": up.url}},
        "plugins": [{"name": "masker", "stage": "after_request", "config": {"word": "secret"}}],
    }, pm=pm)
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert stream_text(await resp.text()) == "a ****** word"


async def test_the_cache_answers_json_and_streams_and_stores_assembled_streams(ferro_client,
                                                                               pm):
    DictCache.instances.clear()
    cfg = stub_config("a", reply="cached words")
    cfg["cache"] = {"backend": "dict", "ttl": "90s"}
    client = await ferro_client(cfg, pm=pm)
    provider = client.app[PIPELINE].gateway.providers["a"]
    cache = DictCache.instances[-1]
    assert cache.ttl == 90
    stream = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert stream_text(await stream.text()) == "cached words "
    assert len(cache.stored) == 1, "a stream is stored once assembled"
    assert cache.stored[0].body["choices"][0]["message"]["content"] == "cached words "
    hit = await (await client.post("/v1/chat/completions", json=CHAT)).json()
    assert hit["choices"][0]["message"]["content"] == "cached words "
    replay = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert stream_text(await replay.text()) == "cached words "
    assert provider.calls == 1, "both later requests were answered from the cache"
    assert len(cache.stored) == 1, "a hit is not stored again"


def test_a_provider_needs_only_the_protocol():
    assert not issubclass(StubProvider, BaseProvider)
    assert isinstance(StubProvider("a"), Provider)
