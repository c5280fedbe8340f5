"""Random and hostile request bodies through the gateway, in process, to every route (chat
and legacy completions, streamed and not, and embeddings) and every installed provider,
each against a local fake of its native API that always answers well.

Bodies are valid requests with, first, each known field (top-level, in a message, in a
content part, in a tool, in a tool call) set to a value of each JSON type in turn; then
random ones with one to three fields set to a value of another type, a huge number, a long
or odd string, or an odd structure; and raw bytes: deep nesting, NaN and Infinity literals,
duplicate keys, 64-bit overflows, lone surrogates, invalid UTF-8, JSON that is not an
object.

Every reply must be a 2xx, or a 4xx in the error schema: the fakes are honest, so a 5xx is
the gateway's own failure. No request may hang, and none may fail in a provider's
translation (the ``untranslatable_request`` 400): validation names the field first.

Bounded: the sweep, then a fixed seed and ``FERRO_FUZZ_EXAMPLES`` random requests per
provider (default 300), ``FERRO_FUZZ_SEED`` for another sequence.
``FERRO_FUZZ_EXAMPLES=5000`` for a long run.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import orjson
import pytest
from aiohttp import web
from ferro.plugins import make_plugin_manager
from ferro.registry import build_registry
from ferro.testing import sse_body

from tests.e2e.native_fakes import (
    MODELS,
    Reply,
    anthropic_chat,
    cohere_chat,
    openai_chat,
    openai_completion,
)

EXAMPLES = int(os.environ.get("FERRO_FUZZ_EXAMPLES", "300"))
SEED = int(os.environ.get("FERRO_FUZZ_SEED", "20261202"))
PROVIDERS = sorted(build_registry(make_plugin_manager(env={})).providers)
REPLY = Reply("ok")

# --- the honest fake upstream ---------------------------------------------------------------


def _count(value: Any) -> int:
    """How many inputs an embeddings ``input`` holds."""
    if isinstance(value, str) or (isinstance(value, list) and value
                                  and isinstance(value[0], int)):
        return 1
    return len(value) if isinstance(value, list) else 1


def _vectors(n: int, dims: Any) -> list[list[float]]:
    size = dims if isinstance(dims, int) and 0 < dims <= 4096 else 4
    return [[0.5] * size for _ in range(n)]


def _gemini_chat(body: dict[str, Any], stream: bool) -> dict[str, Any] | bytes:
    n = (body.get("generationConfig") or {}).get("candidateCount") or 1
    candidates = [{"content": {"role": "model", "parts": [{"text": "ok"}]},
                   "finishReason": "STOP", "index": i} for i in range(n)]
    answer = {"candidates": candidates, "responseId": "r1", "modelVersion": "m",
              "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1,
                                "totalTokenCount": 2}}
    return sse_body(answer) if stream else answer


def _gemini_embed(path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path.endswith(":batchEmbedContents"):
        requests = body["requests"]
        dims = requests[0].get("outputDimensionality") if requests else None
        return {"embeddings": [{"values": v} for v in _vectors(len(requests), dims)]}
    return {"embedding": {"values": _vectors(1, body.get("outputDimensionality"))[0]}}


def native_answer(path: str, body: dict[str, Any]) -> dict[str, Any] | bytes:
    """A good answer, in the wire format of the endpoint at ``path``, to ``body``."""
    if path.endswith("/v1/messages"):
        return anthropic_chat(body, REPLY)
    if path.endswith((":generateContent", ":streamGenerateContent")):
        return _gemini_chat(body, path.endswith(":streamGenerateContent"))
    if path.endswith((":embedContent", ":batchEmbedContents")):
        return _gemini_embed(path, body)
    if path.endswith("/v2/chat"):
        return cohere_chat(body, REPLY)
    if path.endswith("/v2/embed"):
        texts = body.get("texts") or []
        vectors = _vectors(len(texts), body.get("output_dimension"))
        return {"id": "e", "texts": texts, "meta": {"billed_units": {"input_tokens": 1}},
                "embeddings": {kind: vectors for kind in body.get("embedding_types")
                               or ["float"]}}
    if path.endswith("/api/embed"):
        vectors = _vectors(_count(body["input"]), body.get("dimensions"))
        return {"model": body["model"], "embeddings": vectors, "prompt_eval_count": 1}
    if path.endswith("/embeddings"):
        dims = body.get("dimensions") or body.get("output_dimension")
        data = [{"object": "embedding", "index": i, "embedding": v}
                for i, v in enumerate(_vectors(_count(body["input"]), dims))]
        return {"object": "list", "data": data, "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}}
    if path.endswith("/chat/completions"):
        return openai_chat(body, REPLY)
    if path.endswith("/completions"):
        return openai_completion(body, REPLY)
    raise AssertionError(f"the gateway called an unknown endpoint: {path}")


async def honest(request: web.Request) -> web.StreamResponse:
    answer = native_answer(request.path, await request.json())
    if isinstance(answer, bytes):
        return web.Response(body=answer, content_type="text/event-stream")
    return web.json_response(answer)


# --- hostile bodies -------------------------------------------------------------------------

SCALARS = [None, True, False, 0, 1, -1, 2, 3, 20, 21, 128, 129, 2**31, 2**53, 2**63 - 1,
           -(2**63), 2**64 - 1, 0.5, -0.0, 1.5, 1e308, -1e308, "", "x", "auto", "none",
           "required", "text", "json_object", "json_schema", "function", "image_url",
           "input_audio", "file", "user", "assistant", "tool", "system", "high", "audio",
           "base64", "float", "\u0000", "\U0001f600 \u202e", "a" * 5000,
           "data:image/png;base64,AAAA", "data:application/pdf;base64,JVBERg==",
           "https://example.invalid/a.png", "{}", "{bad", "[1]"]
FIELDS = {
    "chat": ["temperature", "top_p", "top_k", "n", "max_tokens", "max_completion_tokens",
             "stop", "tools", "tool_choice", "functions", "function_call",
             "parallel_tool_calls", "response_format", "seed", "user", "logprobs",
             "top_logprobs", "logit_bias", "presence_penalty", "frequency_penalty",
             "modalities", "audio", "reasoning_effort", "service_tier", "verbosity",
             "metadata", "store", "prediction", "web_search_options", "stream_options",
             "thinking", "safety_identifier", "prompt_cache_key", "stream", "model",
             "messages"],
    "completions": ["prompt", "max_tokens", "n", "best_of", "logprobs", "echo", "suffix",
                    "stop", "temperature", "top_p", "seed", "user", "logit_bias",
                    "stream", "stream_options", "presence_penalty", "model"],
    "embeddings": ["input", "encoding_format", "dimensions", "user", "input_type",
                   "task_type", "model"],
}
MESSAGE_FIELDS = ["role", "content", "name", "tool_calls", "tool_call_id", "function_call",
                  "refusal", "thinking_blocks", "prefix"]
#: Message fields only an assistant message carries: set on one when the body has one.
ASSISTANT_FIELDS = frozenset({"tool_calls", "function_call", "refusal", "thinking_blocks",
                              "prefix"})
PART_FIELDS = ["type", "text", "image_url", "input_audio", "file", "cache_control",
               "refusal"]
TOOL_FIELDS = ["type", "function", "cache_control"]
FUNCTION_FIELDS = ["name", "description", "parameters", "strict"]
CALL_FIELDS = ["id", "type", "function", "extra_content"]


def value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, biased to the shapes requests hold."""
    roll = rng.random()
    if depth > 2 or roll < 0.45:
        return rng.choice(SCALARS)
    if roll < 0.6:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.75:
        keys = PART_FIELDS + FUNCTION_FIELDS + ["url", "data", "format", "mode", "tools",
                                                 "json_schema", "schema", "google",
                                                 "allowed_tools", "arguments"]
        return {rng.choice(keys): value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if roll < 0.85:
        return [part(rng, depth + 1) for _ in range(rng.randint(1, 2))]
    if roll < 0.95:
        return [tool(rng, depth + 1) for _ in range(rng.randint(1, 2))]
    return [rng.choice(SCALARS) for _ in range(rng.choice([5, 17, 129, 300]))]


def part(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    kind = rng.choice(["text", "image_url", "input_audio", "file", "refusal", "video", 5])
    out: dict[str, Any] = {"type": kind, "text": "hi"}
    if kind == "image_url":
        out["image_url"] = {"url": "data:image/png;base64,AAAA"}
    for _ in range(rng.randint(0, 2)):
        out[rng.choice(PART_FIELDS)] = value(rng, depth + 1)
    return out


def tool(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": rng.choice(["string", "integer"])}}}}
    out: dict[str, Any] = {"type": "function", "function": fn}
    for _ in range(rng.randint(0, 2)):
        if rng.random() < 0.5:
            fn[rng.choice(FUNCTION_FIELDS)] = value(rng, depth + 1)
        else:
            out[rng.choice(TOOL_FIELDS)] = value(rng, depth + 1)
    return out


def base_body(route: str, model: str, rng: random.Random) -> dict[str, Any]:
    if route == "embeddings":
        return {"model": model, "input": rng.choice(["hello", ["a", "b"], [1, 2, 3]])}
    if route == "completions":
        return {"model": model, "prompt": rng.choice(["hello", ["a", "b"]]),
                "stream": rng.random() < 0.5}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
    if rng.random() < 0.5:
        messages = [{"role": "system", "content": "be brief"}, *messages,
                    {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    return {"model": model, "messages": messages, "stream": rng.random() < 0.5}


def mutate(body: dict[str, Any], route: str, rng: random.Random) -> None:
    roll = rng.random()
    messages = body.get("messages")
    message = rng.choice(messages) if isinstance(messages, list) and messages else None
    if route != "chat" or roll < 0.5 or not isinstance(message, dict):
        body[rng.choice(FIELDS[route])] = value(rng)
        return
    if roll < 0.7:
        field = rng.choice(MESSAGE_FIELDS)
        if field in ASSISTANT_FIELDS:
            message = next((m for m in messages if isinstance(m, dict)
                            and m.get("role") == "assistant"), message)
        message[field] = value(rng)
    elif roll < 0.85:
        message["content"] = [part(rng) for _ in range(rng.randint(1, 3))]
    elif roll < 0.93:
        calls = message.setdefault("tool_calls", [{"id": "c", "type": "function",
                                                   "function": {"name": "f"}}])
        if isinstance(calls, list) and calls and isinstance(calls[0], dict):
            calls[0][rng.choice(CALL_FIELDS)] = value(rng)
    else:
        body["tools"] = [tool(rng) for _ in range(rng.randint(1, 3))]
        body["tool_choice"] = rng.choice(["auto", "required", {"type": "function",
                                                               "function": {"name": "f"}},
                                          {"type": "allowed_tools", "allowed_tools": {
                                              "mode": "required", "tools": value(rng)}}])


#: A value of each JSON type (null is "unset", and empty values ask for nothing).
TYPES = [True, 7, 1.5, "x", [7], {"x": 7}]


def sweep(model: str) -> list[tuple[str, dict[str, Any]]]:
    """Each known field set to a value of each type, on an otherwise valid request."""
    rng = random.Random(0)
    out = []

    def each(route: str, build: Any) -> None:
        for i, wrong in enumerate(TYPES):
            body = base_body(route, model, rng)
            if "stream" in body:
                body["stream"] = i % 2 == 0
            build(body, wrong)
            out.append((route, body))

    for route in ("chat", "completions", "embeddings"):
        for field in FIELDS[route]:
            each(route, lambda body, wrong, field=field: body.__setitem__(field, wrong))
    for field in MESSAGE_FIELDS:
        for role in ("user", "assistant"):
            each("chat", lambda body, wrong, field=field, role=role: body["messages"].append(
                {"role": role, "content": "x", field: wrong}))
    for field in PART_FIELDS:
        each("chat", lambda body, wrong, field=field: body["messages"].append(
            {"role": "user", "content": [{"type": "text", "text": "x", field: wrong}]}))
    for field in CALL_FIELDS:
        each("chat", lambda body, wrong, field=field: body["messages"].append(
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {
                "name": "f", "arguments": "{}"}, field: wrong}]}))
    for field in TOOL_FIELDS:
        each("chat", lambda body, wrong, field=field: body.__setitem__(
            "tools", [{"type": "function", "function": {"name": "f"}, field: wrong}]))
    for field in FUNCTION_FIELDS:
        each("chat", lambda body, wrong, field=field: body.__setitem__(
            "tools", [{"type": "function", "function": {"name": "f", field: wrong}}]))
    return out


def deep(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def raw_bodies(model: str) -> list[tuple[str, bytes]]:
    """Chat bodies no JSON encoder writes, and absurdly long ones, with their route."""
    head = b'{"model": "' + model.encode() + b'", "messages": [{"role": "user", "content": "hi"}]'
    chat = [
        head + b', "metadata": ' + deep(200) + b"}",
        head + b', "x": ' + deep(600) + b"}",
        head + b', "x": ' + deep(1100) + b"}",
        head + b', "x": [' + b",".join([deep(150)] * 50) + b"]}",
        head + b', "temperature": NaN}', head + b', "temperature": Infinity}',
        head + b', "max_tokens": -Infinity}', head + b', "n": 123456789012345678901234567890}',
        head + b', "seed": 18446744073709551616}', head + b', "top_p": 1e999}',
        head + b', "model": "other", "model": 7}', head + b', "user": "\\ud800"}',
        head + b', "user": "\xff\xfe"}', b"\xef\xbb\xbf" + head + b"}", head,
        b"null", b"[]", b"123", b'"text"', b"   ", b"{", b"",
        b'{"model": "' + b"m" * 300_000 + b'", "messages": []}',
        b'{"model": "' + model.encode() + b'", "messages": ['
        + b",".join([b'{"role": "user", "content": "x"}'] * 12_000) + b"]}",
    ]
    many_inputs = b'{"model": "' + model.encode() + b'", "input": [' + b",".join(
        [b'"x"'] * 3000) + b"]}"
    return [("chat", body) for body in chat] + [("embeddings", many_inputs)]


# --- the run --------------------------------------------------------------------------------

ROUTES = {"chat": "/v1/chat/completions", "completions": "/v1/completions",
          "embeddings": "/v1/embeddings"}


def check_reply(status: int, data: bytes, sent: bytes) -> None:
    where = f"{status} for {sent[:600]!r}: {data[:600]!r}"
    assert status < 500, where
    if status >= 400:
        error = orjson.loads(data)["error"]
        assert isinstance(error["message"], str) and error["message"], where
        assert isinstance(error["type"], str) and "code" in error and "param" in error, where
        assert error["code"] != "untranslatable_request", where
        return
    if data.startswith(b"data: "):
        assert data.endswith(b"data: [DONE]\n\n"), where
        assert b'{"error"' not in data, where
    else:
        assert isinstance(orjson.loads(data), dict), where


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_hostile_bodies_get_a_2xx_or_a_4xx_in_the_schema(fake_upstream, ferro_client,
                                                               provider):
    upstream = await fake_upstream({"POST /{tail:.*}": honest})
    settings: dict[str, Any] = {"type": provider, "base_url": upstream.url, "api_key": "k"}
    client = await ferro_client({"providers": {provider: settings},
                                 "targets": [{"virtual_key": provider}]})
    model = MODELS.get(provider, provider)
    rng = random.Random(f"{SEED}-{provider}")
    bodies = raw_bodies(model) + [(route, orjson.dumps(body)) for route, body in sweep(model)]
    for _ in range(EXAMPLES):
        route = rng.choice(["chat", "chat", "completions", "embeddings"])
        body = base_body(route, model, rng)
        for _ in range(rng.randint(1, 3)):
            mutate(body, route, rng)
        bodies.append((route, orjson.dumps(body)))
    statuses: set[int] = set()
    for route, sent in bodies:
        async with asyncio.timeout(10):
            resp = await client.post(ROUTES[route], data=sent,
                                     headers={"Content-Type": "application/json"})
            data = await resp.read()
        check_reply(resp.status, data, sent)
        statuses.add(resp.status)
    assert 200 in statuses and 400 in statuses  # both kinds really occurred
