"""The blocklist in a gateway: requests of every operation, whole and streamed answers, the
older gateway's word-filter config, and what the exchange records."""

import orjson
import pytest
from ferro import hookimpl
from ferro.app import PIPELINE
from ferro.testing import installed_plugins, stub_config

CHAT = "/v1/chat/completions"
WORDS = {"blocked_words": ["password", "secret code"]}


def chat(text, **body):
    return {"model": "m", "messages": [{"role": "user", "content": text}], **body}


def gateway(*plugins, reply="a harmless answer"):
    config = stub_config("a", reply=reply)
    config["plugins"] = list(plugins)
    return config


def before(**options):
    return {"name": "blocklist", "stage": "before_request", "config": options}


def after(**options):
    return {"name": "blocklist", "stage": "after_request", "config": options}


def frames(body: str) -> list:
    """The SSE data lines of a stream, JSON decoded ([DONE] as is)."""
    return [line[6:] if line == "data: [DONE]" else orjson.loads(line[6:])
            for line in body.splitlines() if line.startswith("data: ")]


def streamed_text(events: list) -> str:
    return "".join((c.get("delta") or {}).get("content") or ""
                   for e in events if isinstance(e, dict) for c in e.get("choices") or ())


def test_both_names_are_registered():
    row = installed_plugins()["guardrail-blocklist"]
    assert row["distribution"] == "ferro-guardrail-blocklist"
    assert row["registers"] == {"plugins": ["blocklist", "word-filter"]}


async def test_a_blocked_request_is_a_400_and_reaches_no_provider(ferro_client, stub_plugins):
    client = await ferro_client(gateway(before(**WORDS)), pm=stub_plugins)
    resp = await client.post(CHAT, json=chat("my PASSWORD is hunter2"))
    assert resp.status == 400
    assert await resp.json() == {"error": {
        "message": 'request rejected by blocklist: blocked word detected: "password"',
        "type": "invalid_request_error", "code": "content_blocked", "param": None}}
    ok = await client.post(CHAT, json=chat("my passwords are safe"))  # whole words only
    assert ok.status == 200
    assert client.app[PIPELINE].gateway.providers["a"].calls == 1


async def test_a_blocked_stream_request_is_a_plain_400_before_any_stream(ferro_client,
                                                                       stub_plugins):
    client = await ferro_client(gateway(before(**WORDS)), pm=stub_plugins)
    resp = await client.post(CHAT, json=chat("the secret code", stream=True))
    assert resp.status == 400
    assert resp.content_type == "application/json"
    assert (await resp.json())["error"]["code"] == "content_blocked"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/completions", {"model": "m", "prompt": ["fine", "tell me the secret code"]}),
    ("/v1/embeddings", {"model": "m", "input": "password"}),
    (CHAT, {"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "look:"},
                                     {"type": "text", "text": "the password"}]}]}),
    (CHAT, {"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function",
            "function": {"name": "login", "arguments": '{"password": "x"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}),
])
async def test_every_operation_and_kind_of_text_is_searched(ferro_client, stub_plugins, path,
                                                           body):
    client = await ferro_client(gateway(before(**WORDS)), pm=stub_plugins)
    resp = await client.post(path, json=body)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_blocked"


async def test_a_blocked_whole_answer_is_a_400(ferro_client, stub_plugins):
    client = await ferro_client(gateway(after(**WORDS), reply="the secret code is 42"),
                                pm=stub_plugins)
    resp = await client.post(CHAT, json=chat("what is it?"))
    assert resp.status == 400
    assert (await resp.json())["error"] == {
        "message": 'request rejected by blocklist: blocked word detected in the response: '
                   '"secret code"',
        "type": "invalid_request_error", "code": "content_blocked", "param": None}
    legacy = await client.post("/v1/completions", json={"model": "m", "prompt": "go"})
    assert legacy.status == 400


async def test_a_stream_ends_with_an_error_event_at_the_chunk_that_completes_a_phrase(
        ferro_client, stub_plugins):
    # the stub streams a word per chunk: "the ", "secret ", "code ", "is ", "42 "
    client = await ferro_client(gateway(after(**WORDS), reply="the secret code is 42"),
                                pm=stub_plugins)
    resp = await client.post(CHAT, json=chat("what is it?", stream=True))
    assert resp.status == 200
    events = frames(await resp.text())
    assert streamed_text(events) == "the secret "
    assert events[-2] == {"error": {
        "message": 'request rejected by blocklist: blocked word detected in the response: '
                   '"secret code"',
        "type": "invalid_request_error", "code": "content_blocked", "param": None}}
    assert events[-1] == "[DONE]"


async def test_a_clean_stream_passes_whole_and_is_not_searched_again(ferro_client,
                                                                   stub_plugins):
    client = await ferro_client(gateway(after(**WORDS), reply="nothing to see here"),
                                pm=stub_plugins)
    resp = await client.post(CHAT, json=chat("hi", stream=True))
    events = frames(await resp.text())
    assert streamed_text(events) == "nothing to see here "
    assert events[-1] == "[DONE]"
    assert not any("error" in e for e in events if isinstance(e, dict))


async def test_one_instance_searches_requests_and_answers(ferro_client, stub_plugins):
    client = await ferro_client(gateway(before(**WORDS), after(**WORDS),
                                        reply="my password is x"), pm=stub_plugins)
    gw = client.app[PIPELINE].gateway
    assert gw.before[0][1].__self__ is gw.after[0][1].__self__
    assert (await client.post(CHAT, json=chat("a password"))).status == 400
    answer = await client.post(CHAT, json=chat("hello"))
    assert "in the response" in (await answer.json())["error"]["message"]


async def test_the_older_word_filter_config_loads_unchanged_and_matches_substrings(
        ferro_client, stub_plugins):
    client = await ferro_client(gateway({
        "name": "word-filter", "type": "guardrail", "stage": "before_request",
        "enabled": True, "config": {"blocked_words": ["password", "secret"],
                                    "case_sensitive": False}}), pm=stub_plugins)
    resp = await client.post(CHAT, json=chat("my SuperPasswords"))
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == \
        'request rejected by word-filter: blocked word detected: "password"'


class Exchanges:
    def __init__(self):
        self.seen = []

    @hookimpl
    def exchange_completed(self, exchange):
        self.seen.append(exchange)


@pytest.mark.parametrize(("plugin", "body"), [
    (before(**WORDS), chat("password")),
    (after(**WORDS), chat("hi")),
    (after(**WORDS), chat("hi", stream=True)),
])
async def test_the_exchange_of_a_refusal_records_the_400(ferro_client, stub_plugins, plugin,
                                                        body):
    exchanges = Exchanges()
    stub_plugins.register(exchanges, name="exchanges")
    client = await ferro_client(gateway(plugin, reply="your password"), pm=stub_plugins)
    await (await client.post(CHAT, json=body)).read()
    (exchange,) = exchanges.seen
    assert (exchange.status, exchange.error.code) == (400, "content_blocked")
