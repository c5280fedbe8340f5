"""Hostile request bodies are 400s that name the field, checked before any upstream call:
absurd counts and sizes, fields of a type no translation can read, JSON nested deeper
than orjson can write again. A provider that still fails to translate a request is a 400
too: never retried, never sent to another target, no verdict on its breaker."""

from typing import Any

import orjson
import pytest
from ferro import BaseProvider, ChatResponse, hookimpl, make_plugin_manager
from ferro.app import PIPELINE
from ferro.testing import single_provider
from ferro.validation import MAX_JSON_DEPTH

HELLO = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
ECHO = single_provider("echo", type="echo")
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(("payload", "param"), [
    ({**HELLO, "model": "m" * 257}, "model"),
    ({**HELLO, "model": "gpt\n4o"}, "model"),
    ({**HELLO, "n": 2**63 - 1}, "n"),
    ({**HELLO, "n": 0}, "n"),
    ({**HELLO, "max_tokens": 10**12}, "max_tokens"),
    ({**HELLO, "max_completion_tokens": 2**40}, "max_completion_tokens"),
    ({**HELLO, "top_logprobs": 21}, "top_logprobs"),
    ({**HELLO, "seed": 2**64 - 1}, "seed"),
    ({**HELLO, "stop": ["s"] * 17}, "stop"),
    ({**HELLO, "tools": [TOOL] * 129}, "tools"),
    ({**HELLO, "functions": 1.5}, "functions"),
    ({**HELLO, "functions": [{"name": "f", "parameters": 1}]}, "functions[0].parameters"),
    ({**HELLO, "modalities": 1.5}, "modalities"),
    ({**HELLO, "modalities": ["text", 2]}, "modalities"),
    ({**HELLO, "service_tier": ["auto"]}, "service_tier"),
    ({**HELLO, "function_call": {"name": 5}}, "function_call.name"),
    ({**HELLO, "tool_choice": {"type": "allowed_tools", "allowed_tools": {"tools": 3}}},
     "tool_choice.allowed_tools.tools"),
    ({**HELLO, "logit_bias": {"50256": 500}}, "logit_bias"),
    ({**HELLO, "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({**HELLO, "response_format": {"type": "json_schema", "json_schema": {
        "schema": {}, "description": 3}}}, "response_format.json_schema.description"),
    ({**HELLO, "tools": [{**TOOL, "function": {"name": "f", "description": []}}]},
     "tools[0].function.description"),
    ({"model": "echo", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": "wav"}]}]}, "messages[0].content[0].input_audio"),
    ({"model": "echo", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": 7}}]}]}, "messages[0].content[0].file.file_data"),
    ({"model": "echo", "messages": [{"role": "assistant", "content": "x",
                                     "function_call": "f"}]}, "messages[0].function_call"),
    ({"model": "echo", "messages": [{"role": "function", "name": 1, "content": "x"}]},
     "messages[0].name"),
])
async def test_absurd_or_mistyped_chat_fields_are_400_naming_the_field(ferro_client, payload,
                                                                       param):
    client = await ferro_client(ECHO)
    resp = await client.post("/v1/chat/completions", json=payload)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == param


@pytest.mark.parametrize(("route", "payload", "param"), [
    ("/v1/embeddings", {"model": "echo", "input": ["x"] * 2049}, "input"),
    ("/v1/embeddings", {"model": "echo", "input": "x", "dimensions": 10**6}, "dimensions"),
    ("/v1/completions", {"model": "echo", "prompt": ["x"] * 2049}, "prompt"),
    ("/v1/completions", {"model": "echo", "prompt": "x", "best_of": 21}, "best_of"),
    ("/v1/completions", {"model": "echo", "prompt": "x", "logprobs": 6}, "logprobs"),
])
async def test_absurd_embeddings_and_completions_are_400s(ferro_client, route, payload, param):
    client = await ferro_client(ECHO)
    resp = await client.post(route, json=payload)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == param


async def test_message_and_input_counts_are_configurable(ferro_client):
    client = await ferro_client({**ECHO, "limits": {"max_messages": 3, "max_inputs": 2}})
    four = [{"role": "user", "content": "x"}] * 4
    resp = await client.post("/v1/chat/completions", json={"model": "echo", "messages": four})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == "messages" and "limits.max_messages" in error["message"]
    resp = await client.post("/v1/chat/completions", json={"model": "echo",
                                                           "messages": four[:3]})
    assert resp.status == 200
    resp = await client.post("/v1/embeddings", json={"model": "echo", "input": ["a", "b", "c"]})
    assert resp.status == 400
    assert "limits.max_inputs" in (await resp.json())["error"]["message"]


async def test_ten_thousand_messages_is_the_default_limit(ferro_client):
    client = await ferro_client(ECHO)
    many = orjson.dumps({"model": "echo", "messages": [{"role": "user", "content": "x"}] * 10_001})
    resp = await client.post("/v1/chat/completions", data=many,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "messages"


def nested(depth: int) -> bytes:
    """A chat body whose ``metadata`` holds arrays nested to make the body ``depth`` deep."""
    inner = depth - 1  # the body object itself is one level
    return (b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "x": '
            + b"[" * inner + b"]" * inner + b"}")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 254, 600, 1023])
async def test_json_nested_too_deep_is_one_400_before_any_upstream_call(
        ferro_client, fake_upstream, caplog, depth):
    up = await fake_upstream({})
    client = await ferro_client(single_provider("openai", api_key="k", base_url=up.url))
    resp = await client.post("/v1/chat/completions", data=nested(depth),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert "levels deep" in (await resp.json())["error"]["message"]
    assert up.requests == []
    assert not [r for r in caplog.records if r.exc_info]  # no traceback


async def test_deep_enough_json_and_many_shallow_brackets_are_served(ferro_client):
    client = await ferro_client(ECHO)
    for body in (nested(MAX_JSON_DEPTH), orjson.dumps({**HELLO, "x": [[1]] * 5000})):
        resp = await client.post("/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
        assert resp.status == 200, await resp.text()


class Fragile(BaseProvider):
    """Translates ``body["x"]["y"]`` (a TypeError when ``x`` is not an object), and reads
    ``answer["z"]["w"]`` from its upstream's answer (a TypeError when it is not one)."""

    async def chat(self, request: Any) -> ChatResponse:
        native = {"y": request.body.get("x", {})["y"]}
        answer = await self.request_json("POST", self.base_url + "/native", body=native)
        return ChatResponse({"choices": [], "w": answer["z"]["w"]})


class FragilePlugin:
    @staticmethod
    @hookimpl
    def register_providers(register: Any) -> None:
        register("fragile", Fragile)


def fragile_config(first_url: str, second_url: str) -> dict[str, Any]:
    return {"strategy": {"mode": "fallback"},
            "providers": {"a": {"type": "fragile", "base_url": first_url},
                          "b": {"type": "fragile", "base_url": second_url}},
            "targets": [{"virtual_key": "a", "retry": {"attempts": 3, "backoff": "1ms"},
                         "circuit_breaker": {"failure_threshold": 1}},
                        {"virtual_key": "b"}]}


async def test_a_failed_translation_is_a_400_never_retried_nor_sent_elsewhere(
        ferro_client, fake_upstream):
    a = await fake_upstream({"POST /native": {"z": {"w": 1}}})
    b = await fake_upstream({"POST /native": {"z": {"w": 1}}})
    pm = make_plugin_manager(env={})
    pm.register(FragilePlugin(), name="fragile-provider")
    client = await ferro_client(fragile_config(a.url, b.url), pm=pm)
    resp = await client.post("/v1/chat/completions", json={**HELLO, "model": "m", "x": 1.5})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "untranslatable_request"
    assert "provider a cannot translate this request: TypeError" in error["message"]
    assert resp.headers["x-should-retry"] == "false"
    assert (len(a.requests), len(b.requests)) == (0, 0)
    breaker = client.app[PIPELINE].gateway.targets[0].breaker
    assert breaker.state.name == "CLOSED"


async def test_a_failure_after_the_upstream_answered_is_the_upstreams(ferro_client,
                                                                       fake_upstream):
    a = await fake_upstream({"POST /native": {"z": "not an object"}})
    b = await fake_upstream({"POST /native": {"z": {"w": 1}}})
    pm = make_plugin_manager(env={})
    pm.register(FragilePlugin(), name="fragile-provider")
    client = await ferro_client(fragile_config(a.url, b.url), pm=pm)
    resp = await client.post("/v1/chat/completions", json={**HELLO, "model": "m",
                                                           "x": {"y": 1}})
    assert resp.status == 200
    assert resp.headers["X-Ferro-Provider"] == "b"
    assert len(a.requests) == 3  # a retryable 502 provider_error: tried again, then b

