"""Parsing and validating request bodies (chat, embeddings, legacy completions), with
precise 400 messages that name the field."""

from __future__ import annotations

from typing import Any

import orjson

from ferro.errors import InvalidRequestError
from ferro.operations import ChatRequest, CompletionsRequest, EmbeddingsRequest

__all__ = ["parse_chat_request", "parse_completions_request", "parse_embeddings_request"]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

_RANGES = (
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("presence_penalty", -2.0, 2.0),
    ("frequency_penalty", -2.0, 2.0),
)


#: Fields checked for their JSON type only: (name, type, how to say it).
_TYPED = (
    ("stream_options", dict, "an object"),
    ("response_format", dict, "an object"),
    ("tool_choice", str | dict, "a string or an object"),
    ("parallel_tool_calls", bool, "true or false"),
    ("reasoning_effort", str, "a string"),
    ("user", str, "a string"),
    ("seed", int, "an integer"),
)


def _fail(message: str, param: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """The body as a JSON object with a string ``model``."""
    if not raw:
        raise _fail(f"the request body is empty: send a JSON {what} request")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _fail("the request body must be a JSON object")
    model = body.get("model")
    if not model:
        raise _fail("model is required", "model")
    if not isinstance(model, str):
        raise _fail("model must be a string", "model")
    return body


def parse_chat_request(raw: bytes) -> ChatRequest:
    body = _json_object(raw, "chat-completions")
    messages = body.get("messages")
    if not messages:
        raise _fail("at least one message is required", "messages")
    if not isinstance(messages, list):
        raise _fail("messages must be an array", "messages")
    for i, message in enumerate(messages):
        _check_message(message, i)
    _check_sampling(body, ("max_tokens", "max_completion_tokens", "n"))
    _check_tools(body.get("tools"))
    _check_typed(body, _TYPED)
    _check_response_format(body.get("response_format"))
    _check_tool_choice(body.get("tool_choice"))
    return ChatRequest(body)


_EMBEDDING_TYPED = (("user", str, "a string"),)


def parse_embeddings_request(raw: bytes) -> EmbeddingsRequest:
    body = _json_object(raw, "embeddings")
    value = body.get("input")
    if value is None or value == "" or value == []:
        raise _fail("input is required: a string, an array of strings, or token arrays",
                    "input")
    if not (isinstance(value, str) or _is_tokens(value) or (
            isinstance(value, list) and (all(isinstance(v, str) and v for v in value)
                                         or all(_is_tokens(v) for v in value)))):
        raise _fail("input must be a non-empty string, an array of non-empty strings, an "
                    "array of integers (tokens) or an array of token arrays", "input")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise _fail(f"encoding_format must be 'float' or 'base64' (got {fmt!r})",
                    "encoding_format")
    _check_positive_ints(body, ("dimensions",))
    _check_typed(body, _EMBEDDING_TYPED)
    body.pop("stream", None)  # embeddings never stream
    return EmbeddingsRequest(body)


_COMPLETION_TYPED = (
    ("stream_options", dict, "an object"),
    ("echo", bool, "true or false"),
    ("suffix", str, "a string"),
    ("user", str, "a string"),
    ("seed", int, "an integer"),
    ("logit_bias", dict, "an object"),
    ("logprobs", int, "an integer"),
)


def parse_completions_request(raw: bytes) -> CompletionsRequest:
    body = _json_object(raw, "completions")
    prompt = body.get("prompt")
    if prompt is None:
        raise _fail("prompt is required", "prompt")
    if not (isinstance(prompt, str) or _is_tokens(prompt) or (
            isinstance(prompt, list) and prompt and (all(isinstance(p, str) for p in prompt)
                                                     or all(_is_tokens(p) for p in prompt)))):
        raise _fail("prompt must be a string, an array of strings, an array of integers "
                    "(tokens) or an array of token arrays", "prompt")
    _check_sampling(body, ("max_tokens", "n", "best_of"))
    _check_typed(body, _COMPLETION_TYPED)
    return CompletionsRequest(body)


def _is_tokens(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value))


def _check_sampling(body: dict[str, Any], counts: tuple[str, ...]) -> None:
    """Ranges, positive counts, ``stream`` and ``stop``: what chat and completions share."""
    for name, low, high in _RANGES:
        value = body.get(name)
        if value is not None and (not _is_number(value) or not low <= value <= high):
            raise _fail(f"{name} must be between {low:g} and {high:g}", name)
    _check_positive_ints(body, counts)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _fail("stream must be true or false", "stream")
    _check_stop(body.get("stop"))


def _check_positive_ints(body: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(f"{name} must be an integer", name)
        if value <= 0:
            raise _fail(f"{name} must be positive", name)


def _check_typed(body: dict[str, Any], typed: tuple[tuple[str, Any, str], ...]) -> None:
    for name, kind, label in typed:
        value = body.get(name)
        if value is not None and (not isinstance(value, kind) or
                                  (kind is int and isinstance(value, bool))):
            raise _fail(f"{name} must be {label}", name)


def _check_message(message: Any, i: int) -> None:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise _fail(f"{where} must be an object with a role", where)
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _fail(f"{where}.role must be one of {', '.join(sorted(ROLES))} (got {role!r})",
                    f"{where}.role")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise _fail(f"{where}.tool_call_id is required for role 'tool'", f"{where}.tool_call_id")
    _check_tool_calls(message.get("tool_calls"), where)
    content = message.get("content")
    if content is None:
        if role == "assistant":  # an assistant turn may carry only tool_calls (or a refusal)
            return
        raise _fail(f"{where}.content is required for role {role!r}", f"{where}.content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _fail(f"{where}.content must be a string or an array of content parts",
                    f"{where}.content")
    for j, part in enumerate(content):
        _check_part(part, f"{where}.content[{j}]")


def _check_part(part: Any, where: str) -> None:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise _fail(f"{where} must be an object with a type", where)
    kind = part["type"]
    if kind == "text" and not isinstance(part.get("text"), str):
        raise _fail(f"{where}.text must be a string", f"{where}.text")
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            raise _fail(f"{where}.image_url.url must be a string", f"{where}.image_url.url")


def _check_tool_calls(calls: Any, where: str) -> None:
    if calls is None:
        return
    if not isinstance(calls, list):
        raise _fail(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
    for k, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if (not isinstance(fn, dict) or not isinstance(fn.get("name"), str)
                or not isinstance(fn.get("arguments", ""), str)
                or not isinstance(call.get("id", ""), str)):
            raise _fail(f"{where}.tool_calls[{k}] must have a string id, function.name and "
                        "function.arguments (a JSON string)", f"{where}.tool_calls[{k}]")


def _check_response_format(fmt: Any) -> None:
    if fmt is None:
        return
    if not isinstance(fmt.get("type"), str):
        raise _fail("response_format.type is required", "response_format.type")
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise _fail("response_format.json_schema must be an object whose schema is an "
                        "object", "response_format.json_schema")


def _check_tool_choice(choice: Any) -> None:
    if not isinstance(choice, dict):
        return
    fn = choice.get("function")
    if choice.get("type") == "function" and (not isinstance(fn, dict)
                                             or not isinstance(fn.get("name"), str)):
        raise _fail("tool_choice.function.name is required", "tool_choice.function.name")


def _check_stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _fail("stop must be a string or an array of strings", "stop")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _fail("tools must be an array", "tools")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _fail(f"tools[{i}].function.name is required", f"tools[{i}].function.name")
        if not isinstance(fn.get("parameters", {}), dict):
            raise _fail(f"tools[{i}].function.parameters must be an object",
                        f"tools[{i}].function.parameters")
