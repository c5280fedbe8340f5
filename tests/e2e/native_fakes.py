"""Local fakes of each provider's native API, for the end-to-end tests: chat in OpenAI's,
Anthropic's, Gemini's and Cohere's own wire formats, OpenAI's legacy completions, and the
embeddings API of every provider that has one.

A chat or completions fake answers what a :class:`Reply` says (a text, optionally a
get_weather tool call, token counts), streamed or not as the request asks, each in the wire
format of its provider. An embeddings fake answers :func:`vector_for` each input, so a test
can tell which vector belongs to which input.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web
from ferro.testing import sse_body

#: A model each provider type serves, for chat and legacy completions.
MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.0-flash",
    "cohere": "command-a-03-2025",
    "openai": "gpt-4o",
    "groq": "llama-3.3-70b-versatile",
    "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "mistral": "mistral-large-latest",
    "deepseek": "deepseek-chat",
    "azure-openai": "gpt-4o",
    "ollama": "llama3.2",
}

#: The wire format each provider type speaks for chat.
WIRES = {"anthropic": "anthropic", "gemini": "gemini", "cohere": "cohere"}


def wire_of(provider: str) -> str:
    return WIRES.get(provider, "openai")


@attrs.frozen
class Reply:
    """What a fake model answers. ``finish`` is OpenAI's name for why it stopped
    (``stop`` or ``length``); with a tool ``call`` (get_weather's arguments) it is
    ``tool_calls``."""

    text: str
    call: dict[str, Any] | None = None
    finish: str = "stop"
    prompt_tokens: int = 20
    completion_tokens: int = 5

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.call is not None else self.finish

    @property
    def pieces(self) -> list[str]:
        """The text as a stream sends it: a word (with its trailing space) at a time."""
        return re.findall(r"\S+\s*", self.text) or [self.text]

    def openai_usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


#: A fixed reply, or one made from the native request body.
Replier = Reply | Callable[[dict[str, Any]], Reply]


def _reply(replier: Replier, body: dict[str, Any]) -> Reply:
    return replier(body) if callable(replier) else replier


def user_text(wire: str, body: dict[str, Any]) -> str:
    """The text of the last user message of a native chat request."""
    if wire == "gemini":
        turns = [c for c in body["contents"] if c.get("role", "user") == "user"]
        return "".join(p.get("text", "") for p in turns[-1]["parts"])
    last = [m for m in body["messages"] if m["role"] == "user"][-1]
    content = last["content"]
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


# --- chat: OpenAI ----------------------------------------------------------------------------


def openai_chat(body: dict[str, Any], reply: Reply) -> dict[str, Any] | bytes:
    """A ``chat.completion``, or its chunks (usage in a last ``choices: []`` chunk)."""
    model = body["model"]
    if body.get("stream"):
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        pieces = reply.pieces
        events = [chunk({"role": "assistant", "content": pieces[0]})]
        events += [chunk({"content": p}) for p in pieces[1:]]
        if reply.call is not None:
            args = json.dumps(reply.call)
            half = len(args) // 2
            events += [
                chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                       "function": {"name": "get_weather", "arguments": ""}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[:half]}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]}),
            ]
        events.append(chunk({}, reply.finish_reason))
        events.append({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                       "model": model, "choices": [], "usage": reply.openai_usage()})
        return sse_body(*events, b"[DONE]")
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.call is not None:
        message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": json.dumps(reply.call)}}]
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}],
            "usage": reply.openai_usage()}


# --- chat: Anthropic Messages ----------------------------------------------------------------

_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def anthropic_chat(body: dict[str, Any], reply: Reply) -> dict[str, Any] | bytes:
    stop = _ANTHROPIC_STOP[reply.finish_reason]
    if body.get("stream"):
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [], "stop_reason": None,
                "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": 1}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        ]
        events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": p}})
                   for p in reply.pieces]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        if reply.call is not None:
            args = json.dumps(reply.call)
            half = len(args) // 2
            events += [
                ("content_block_start", {"type": "content_block_start", "index": 1,
                                         "content_block": {"type": "tool_use", "id": "toolu_1",
                                                           "name": "get_weather", "input": {}}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
                    "type": "input_json_delta", "partial_json": args[:half]}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
                    "type": "input_json_delta", "partial_json": args[half:]}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 1}),
            ]
        events += [
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": reply.completion_tokens}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        return sse_body(*[e[1] for e in events], event_names=[e[0] for e in events])
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}]
    if reply.call is not None:
        content.append({"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                        "input": reply.call})
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": reply.prompt_tokens,
                      "output_tokens": reply.completion_tokens}}


# --- chat: Gemini generateContent ------------------------------------------------------------

_GEMINI_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def gemini_chat(body: dict[str, Any], reply: Reply, stream: bool) -> dict[str, Any] | bytes:
    usage = {"promptTokenCount": reply.prompt_tokens,
             "candidatesTokenCount": reply.completion_tokens,
             "totalTokenCount": reply.prompt_tokens + reply.completion_tokens}
    finish = _GEMINI_FINISH[reply.finish_reason]
    call = ([{"functionCall": {"name": "get_weather", "args": reply.call}}]
            if reply.call is not None else [])
    meta = {"responseId": "r1", "modelVersion": "gemini-2.0-flash"}
    if stream:
        pieces = reply.pieces
        events = [{"candidates": [{"content": {"role": "model", "parts": [{"text": p}]},
                                   "index": 0}], **meta} for p in pieces[:-1]]
        last_parts = [{"text": pieces[-1]}, *call]
        events.append({"candidates": [{"content": {"role": "model", "parts": last_parts},
                                       "finishReason": finish, "index": 0}],
                       "usageMetadata": usage, **meta})
        return sse_body(*events)
    return {"candidates": [{"content": {"role": "model",
                                        "parts": [{"text": reply.text}, *call]},
                            "finishReason": finish, "index": 0}],
            "usageMetadata": usage, **meta}


# --- chat: Cohere v2 -------------------------------------------------------------------------

_COHERE_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}


def cohere_chat(body: dict[str, Any], reply: Reply) -> dict[str, Any] | bytes:
    """Cohere puts the text before a tool call in ``tool_plan``, other text in ``content``."""
    units = {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens}
    usage = {"billed_units": units, "tokens": units}
    finish = _COHERE_FINISH[reply.finish_reason]
    args = json.dumps(reply.call) if reply.call is not None else ""
    if body.get("stream"):
        events: list[dict[str, Any]] = [
            {"type": "message-start", "id": "c1", "delta": {"message": {"role": "assistant"}}}]
        if reply.call is not None:
            events.append({"type": "tool-plan-delta",
                           "delta": {"message": {"tool_plan": reply.text}}})
            half = len(args) // 2
            events += [
                {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
                    "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}}}},
                {"type": "tool-call-delta", "index": 0, "delta": {"message": {
                    "tool_calls": {"function": {"arguments": args[:half]}}}}},
                {"type": "tool-call-delta", "index": 0, "delta": {"message": {
                    "tool_calls": {"function": {"arguments": args[half:]}}}}},
                {"type": "tool-call-end", "index": 0},
            ]
        else:
            events.append({"type": "content-start", "index": 0, "delta": {"message": {
                "content": {"type": "text", "text": ""}}}})
            events += [{"type": "content-delta", "index": 0,
                        "delta": {"message": {"content": {"text": p}}}} for p in reply.pieces]
            events.append({"type": "content-end", "index": 0})
        events.append({"type": "message-end",
                       "delta": {"finish_reason": finish, "usage": usage}})
        return sse_body(*events, event_names=[e["type"] for e in events])
    if reply.call is not None:
        message = {"role": "assistant", "tool_plan": reply.text, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": args}}]}
    else:
        message = {"role": "assistant", "content": [{"type": "text", "text": reply.text}]}
    return {"id": "c1", "finish_reason": finish, "usage": usage, "message": message}


# --- OpenAI legacy completions ---------------------------------------------------------------


def openai_completion(body: dict[str, Any], reply: Reply, *,
                      usage_on_finish: bool = False) -> dict[str, Any] | bytes:
    """A ``text_completion``, or its chunks. Streamed, usage comes in a last
    ``choices: []`` chunk when ``stream_options.include_usage`` asks for it, as OpenAI
    sends it, or on the finish chunk with ``usage_on_finish`` (Together's way)."""
    model = body["model"]
    if body.get("stream"):
        def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
            return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": model,
                    "choices": [{"text": text, "index": 0, "logprobs": None,
                                 "finish_reason": finish}]}

        events = [chunk(p) for p in reply.pieces]
        last = chunk("", reply.finish_reason)
        if usage_on_finish:
            events.append({**last, "usage": reply.openai_usage()})
        else:
            events.append(last)
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append({"id": "cmpl-1", "object": "text_completion", "created": 1,
                               "model": model, "choices": [], "usage": reply.openai_usage()})
        return sse_body(*events, b"[DONE]")
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": model,
            "choices": [{"text": reply.text, "index": 0, "logprobs": None,
                         "finish_reason": reply.finish_reason}],
            "usage": reply.openai_usage()}


# --- routes ----------------------------------------------------------------------------------


def respond(answer: dict[str, Any] | bytes) -> web.Response:
    if isinstance(answer, bytes):
        return web.Response(body=answer, content_type="text/event-stream")
    return web.json_response(answer)


def chat_routes(provider: str, replier: Replier) -> dict[str, Any]:
    """The fake routes of a provider type's native chat API."""
    wire = wire_of(provider)

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        reply = _reply(replier, body)
        if wire == "anthropic":
            return respond(anthropic_chat(body, reply))
        if wire == "gemini":
            stream = request.path.endswith(":streamGenerateContent")
            return respond(gemini_chat(body, reply, stream))
        if wire == "cohere":
            return respond(cohere_chat(body, reply))
        return respond(openai_chat(body, reply))

    path = {"anthropic": "/v1/messages", "gemini": "/v1beta/models/{tail:.*}",
            "cohere": "/v2/chat"}.get(wire, "/{tail:.*}")
    return {f"POST {path}": handler}


def completions_routes(replier: Replier, *, usage_on_finish: bool = False) -> dict[str, Any]:
    """An OpenAI-compatible server's legacy ``/completions``, at any path."""

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return respond(openai_completion(body, _reply(replier, body),
                                         usage_on_finish=usage_on_finish))

    return {"POST /{tail:.*}": handler}


# --- embeddings ------------------------------------------------------------------------------

#: The length of a vector when the request does not choose one.
DEFAULT_DIMENSIONS = 4


def vector_for(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A vector that identifies ``text``, exact in float32 (so it survives ``base64``)."""
    crc = zlib.crc32(text.encode())
    head = [float(crc >> 16), float(crc & 0xFFFF), len(text) + 0.5, -0.25]
    return (head + [k / 8 for k in range(max(0, dimensions - len(head)))])[:dimensions]


def tokens_of(texts: list[str]) -> int:
    """What the fakes bill for ``texts``: a token per word."""
    return sum(len(t.split()) for t in texts)


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _openai_item(i: int, vector: list[float], encoding: str | None) -> dict[str, Any]:
    if encoding == "base64":
        packed = struct.pack(f"<{len(vector)}f", *vector)
        return {"object": "embedding", "index": i,
                "embedding": base64.b64encode(packed).decode()}
    return {"object": "embedding", "index": i, "embedding": vector}


def openai_embeddings(body: dict[str, Any], *, base64_ok: bool = True,
                      dimensions_field: str = "dimensions") -> dict[str, Any]:
    """OpenAI's ``/embeddings`` answer (Azure's, Mistral's and Together's have its shape).
    ``base64_ok`` False: the server ignores ``encoding_format`` and sends floats."""
    texts = as_list(body["input"])
    dims = body.get(dimensions_field) or DEFAULT_DIMENSIONS
    encoding = body.get("encoding_format") if base64_ok else None
    tokens = tokens_of(texts)
    return {"object": "list",
            "data": [_openai_item(i, vector_for(t, dims), encoding) for i, t in enumerate(texts)],
            "model": body["model"], "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def mistral_embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Mistral's ``/v1/embeddings``: OpenAI's shape, ``output_dimension`` for the size, an
    ``id``, and ``completion_tokens`` in usage."""
    answer = openai_embeddings(body, dimensions_field="output_dimension")
    answer["id"] = "emb-1"
    answer["usage"]["completion_tokens"] = 0
    return answer


def together_embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Together's ``/v1/embeddings``: OpenAI's shape, float vectors, no usage."""
    answer = openai_embeddings(body, base64_ok=False)
    del answer["usage"]
    return answer


def cohere_embed(body: dict[str, Any]) -> dict[str, Any]:
    """Cohere's ``POST /v2/embed`` (``embeddings_by_type``)."""
    texts = body["texts"]
    dims = body.get("output_dimension") or DEFAULT_DIMENSIONS
    types = body.get("embedding_types") or ["float"]
    return {"id": "e1", "response_type": "embeddings_by_type", "texts": texts,
            "embeddings": {kind: [vector_for(t, dims) for t in texts] for kind in types},
            "meta": {"api_version": {"version": "2"},
                     "billed_units": {"input_tokens": tokens_of(texts)}}}


def gemini_embed(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Gemini's ``models/*:embedContent`` and ``models/*:batchEmbedContents`` answers
    (which report no token count)."""

    def one(request: dict[str, Any]) -> dict[str, Any]:
        text = "".join(p.get("text", "") for p in request["content"]["parts"])
        return {"values": vector_for(text, request.get("outputDimensionality")
                                     or DEFAULT_DIMENSIONS)}

    if path.endswith(":batchEmbedContents"):
        return {"embeddings": [one(r) for r in body["requests"]]}
    return {"embedding": one(body)}


def ollama_embed(body: dict[str, Any]) -> dict[str, Any]:
    """Ollama's ``POST /api/embed``."""
    texts = as_list(body["input"])
    dims = body.get("dimensions") or DEFAULT_DIMENSIONS
    return {"model": body["model"], "embeddings": [vector_for(t, dims) for t in texts],
            "total_duration": 14143917, "load_duration": 1019500,
            "prompt_eval_count": tokens_of(texts)}
