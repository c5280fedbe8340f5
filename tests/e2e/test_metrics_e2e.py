"""``GET /metrics`` end to end: known traffic from the official openai client through a real
gateway on loopback (chat, a stream with usage, embeddings, legacy completions, an upstream
500 that falls back to a second target, a 400, a 401 and a 413), then every series read
back from the exposition with its exact value. Label values are compared in the order of
their sorted names (``model``, ``provider``, ``status``; ``error_type``, ``provider``)."""

import asyncio

import openai
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.native_fakes import (
    Reply,
    openai_chat,
    openai_completion,
    openai_embeddings,
    respond,
)

KEY = "sk-gateway"
REPLY = Reply("four words of answer", prompt_tokens=20, completion_tokens=5)
#: Dollars per million tokens, so that each answer's cost is known exactly.
PRICES = {"input": 1.0, "output": 2.0, "embedding": 1.0}
CHAT_COST = (20 * 1.0 + 5 * 2.0) / 1e6
#: The models asked for; the first target serves only the flaky one, and fails it.
CHAT, EMBED, INSTRUCT, FLAKY = ("gpt-4o-mini", "text-embedding-3-small",
                                "gpt-3.5-turbo-instruct", "gpt-4o-flaky")
MESSAGES = [{"role": "user", "content": "hello"}]


def upstream_routes():
    async def chat(request):
        return respond(openai_chat(await request.json(), REPLY))

    async def completions(request):
        return respond(openai_completion(await request.json(), REPLY))

    async def embeddings(request):
        return web.json_response(openai_embeddings(await request.json()))

    return {"POST /v1/chat/completions": chat, "POST /v1/completions": completions,
            "POST /v1/embeddings": embeddings,
            "POST /failing/v1/chat/completions": (500, {"error": {
                "message": "the server had an error", "type": "server_error"}})}


def gateway_config(url):
    breaker = {"failure_threshold": 1, "timeout": "1h"}
    return {
        "strategy": {"mode": "fallback"},
        "providers": {
            "primary": {"type": "openai", "api_key": "sk-up", "base_url": f"{url}/failing/v1",
                        "models": [FLAKY]},
            "backup": {"type": "openai", "api_key": "sk-up", "base_url": f"{url}/v1"}},
        "targets": [{"virtual_key": "primary", "circuit_breaker": breaker},
                    {"virtual_key": "backup", "circuit_breaker": breaker}],
        "pricing": {model: PRICES for model in (CHAT, EMBED, INSTRUCT, FLAKY)},
        "server": {"api_keys": [KEY], "max_body_size": 4096},
    }


async def send_known_traffic(client):
    await client.chat.completions.create(model=CHAT, messages=MESSAGES)
    stream = await client.chat.completions.create(
        model=CHAT, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    usage = [chunk.usage async for chunk in stream if chunk.usage]
    assert usage[0].prompt_tokens == 20
    await client.embeddings.create(model=EMBED, input=["one two", "three"])
    await client.completions.create(model=INSTRUCT, prompt="say it")
    answer = await client.chat.completions.with_raw_response.create(model=FLAKY,
                                                                     messages=MESSAGES)
    assert answer.headers["x-ferro-provider"] == "backup"
    assert answer.headers["x-ferro-attempts"] == "2"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model=CHAT, messages=[])
    with pytest.raises(openai.APIStatusError) as too_large:
        await client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "x" * 5000}])
    assert too_large.value.status_code == 413
    stranger = openai.AsyncOpenAI(base_url=client.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await stranger.chat.completions.create(model=CHAT, messages=MESSAGES)
    await stranger.close()


async def scrape(http_session, client, requests=8):
    """Every sample of the exposition, as ``{(name, sorted labels): value}``, once
    ``requests`` are counted (an exchange is counted just after its reply is sent)."""
    url = str(client.base_url.join("/metrics"))
    for _ in range(100):
        async with http_session.get(url, headers={"Authorization": f"Bearer {KEY}"}) as resp:
            assert resp.status == 200
            text = await resp.text()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text)
                   for s in family.samples}
        if sum(v for (name, _), v in samples.items()
               if name == "gateway_requests_total") == requests:
            return samples
        await asyncio.sleep(0.02)
    raise AssertionError(f"the gateway did not count {requests} requests")


def by_label(samples, name, **fixed):
    """``name``'s samples that match ``fixed``, by their other labels, zeros left out."""
    out = {}
    for (sample, labels), value in samples.items():
        found = dict(labels)
        if sample == name and value and all(found.pop(k, None) == v for k, v in fixed.items()):
            out[tuple(found.values())] = value
    return out


async def test_known_traffic_reads_back_exactly(openai_client, fake_upstream, http_session):
    upstream = await fake_upstream(upstream_routes())
    client = await openai_client(gateway_config(upstream.url), api_key=KEY)
    await send_known_traffic(client)
    samples = await scrape(http_session, client)

    assert by_label(samples, "gateway_requests_total") == {
        (CHAT, "backup", "success"): 2, (EMBED, "backup", "success"): 1,
        (INSTRUCT, "backup", "success"): 1, (FLAKY, "backup", "success"): 1,
        ("none", "none", "rejected"): 3}
    assert by_label(samples, "gateway_request_duration_seconds_count") == {
        (CHAT, "backup"): 2, (EMBED, "backup"): 1, (INSTRUCT, "backup"): 1,
        (FLAKY, "backup"): 1, ("none", "none"): 3}
    assert by_label(samples, "gateway_request_duration_seconds_bucket", le="+Inf") == \
        by_label(samples, "gateway_request_duration_seconds_count")
    assert by_label(samples, "gateway_tokens_input_total") == {
        (CHAT, "backup"): 40, (EMBED, "backup"): 3, (INSTRUCT, "backup"): 20,
        (FLAKY, "backup"): 20}
    assert by_label(samples, "gateway_tokens_output_total") == {
        (CHAT, "backup"): 10, (INSTRUCT, "backup"): 5, (FLAKY, "backup"): 5}
    assert by_label(samples, "gateway_request_cost_usd_total") == pytest.approx({
        (CHAT, "backup"): 2 * CHAT_COST, (EMBED, "backup"): 3 / 1e6,
        (INSTRUCT, "backup"): CHAT_COST, (FLAKY, "backup"): CHAT_COST})
    assert by_label(samples, "gateway_time_to_first_token_seconds_count") == {
        (CHAT, "backup"): 1}
    assert samples[("gateway_overhead_seconds_count", ())] == 5  # the answered requests
    assert samples[("gateway_request_attempts_count", ())] == 5  # the routed ones
    assert samples[("gateway_request_attempts_sum", ())] == 6
    assert samples[("gateway_request_attempts_bucket", (("le", "1.0"),))] == 4
    assert samples[("gateway_retries_total", ())] == 1
    assert by_label(samples, "gateway_circuit_breaker_state") == {("primary",): 1}
    assert ("gateway_circuit_breaker_state", (("provider", "backup"),)) in samples
    assert by_label(samples, "gateway_cache_lookups_total") == {}
    assert by_label(samples, "gateway_rate_limit_rejections_total") == {}


async def test_the_failed_call_before_a_fallback_is_a_provider_error(openai_client, fake_upstream,
                                                                     http_session):
    upstream = await fake_upstream(upstream_routes())
    client = await openai_client(gateway_config(upstream.url), api_key=KEY)
    await client.chat.completions.create(model=FLAKY, messages=MESSAGES)
    samples = await scrape(http_session, client, requests=1)

    assert by_label(samples, "gateway_provider_errors_total") == {
        ("upstream_error", "primary"): 1}
