"""Whole answers from OpenAI-dialect upstreams are relayed as their bytes (plus
``provider``), parsed only when something reads them."""

import orjson
import pytest
from ferro import ChatResponse, Usage
from ferro.operations import PARSE_WHOLE_BELOW, provider_field
from ferro.testing import single_provider

UPSTREAM = (b'{"id":"c-1","object":"chat.completion","created":1,"model":"gpt-4o",'
            b'"choices":[{"index":0,"message":{"role":"assistant","content":"say \\"usage\\":{}"},'
            b'"finish_reason":"stop"}],"score":1.50e-7,'
            b'"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,'
            b'"prompt_tokens_details":{"cached_tokens":2}}}')


#: The same answer past the size from which its usage is found in its bytes, not parsed.
LARGE = UPSTREAM.replace(b'"score"', b'"padding":"' + b"x" * PARSE_WHOLE_BELOW + b'","score"')


def test_a_relayed_answer_is_parsed_only_when_read():
    answer = ChatResponse.relayed(UPSTREAM, provider_field("openai"))
    assert answer.to_json() == UPSTREAM[:-1] + b',"provider":"openai"}'
    assert answer.usage == Usage(3, 4, 7, cached_tokens=2)
    assert ChatResponse(raw=LARGE).usage == Usage(3, 4, 7, cached_tokens=2)
    assert answer._body is None, "usage is read without parsing the answer"
    answer.body["choices"][0]["message"]["content"] = "edited"
    assert orjson.loads(answer.to_json())["choices"][0]["message"]["content"] == "edited"
    assert answer.provider == "openai"


@pytest.mark.parametrize("raw", [b'{"choices":[]}', b'{"usage":null,"choices":[]}',
                                 b'{"usage":{"prompt_tokens":1', b'{"usage":5}', b"[1]"])
@pytest.mark.parametrize("padded", [False, True])
def test_usage_of_an_answer_without_a_readable_one_is_zero(raw, padded):
    if padded:  # large enough to be searched, not parsed
        raw = raw.replace(b"{", b'{"padding":"' + b"x" * PARSE_WHOLE_BELOW + b'",', 1)
    assert ChatResponse(raw=raw).usage == Usage()


async def test_the_client_gets_the_upstreams_bytes(ferro_client, fake_upstream):
    from aiohttp import web

    async def answer(request):
        return web.Response(body=UPSTREAM, content_type="application/json")

    up = await fake_upstream({"POST /chat/completions": answer})
    client = await ferro_client(single_provider("openai", api_key="k", base_url=up.url))
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert await resp.read() == UPSTREAM[:-1] + b',"provider":"openai"}'


async def test_an_answer_naming_its_own_provider_reads_as_the_gateways(ferro_client,
                                                                       fake_upstream):
    body = orjson.loads(UPSTREAM)
    up = await fake_upstream({"POST /chat/completions": {**body, "provider": "Fireworks"}})
    client = await ferro_client(single_provider("openai", api_key="k", base_url=up.url))
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert (await resp.json())["provider"] == "openai"  # the last key wins in JSON readers
    assert orjson.loads(await resp.read())["provider"] == "openai"
