"""Parsing and validating request bodies (chat, embeddings, legacy completions), with
precise 400 messages that name the field.

Validation checks the JSON type of every field a provider's translation reads (so a
translation never meets a shape it cannot read) and bounds every count and size that
would otherwise reach an upstream however absurd: the model name, ``n``, token limits,
``stop`` sequences, tools, ``metadata``, the body's nesting depth. The limits a config may
change (how many messages or inputs; see :class:`~ferro.config.LimitsConfig`) are checked
by :func:`check_limits`. Bounds follow OpenAI's API reference where it documents one
(``n``, ``tools``, ``top_logprobs``, ``metadata``, ``logit_bias``), and are generous
elsewhere: they stop what no model could serve, never what one provider may refuse.

Each operation has a table of the fields it checks, field name -> check; a body is checked
key by key, so a request pays for the fields it sends, not for every field there is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ferro.config import LimitsConfig
from ferro.errors import InvalidRequestError
from ferro.operations import ChatRequest, CompletionsRequest, EmbeddingsRequest, OperationRequest

__all__ = [
    "MAX_JSON_DEPTH",
    "check_limits",
    "parse_chat_request",
    "parse_completions_request",
    "parse_embeddings_request",
]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

#: The deepest nesting of arrays and objects a body may have. orjson reads 1024 levels but
#: writes only 254: the rest is room for what translations and plugins wrap a body in.
MAX_JSON_DEPTH = 128
#: The longest model name.
MAX_MODEL_LENGTH = 256
#: The largest token limit (``max_tokens``, ``max_completion_tokens``).
MAX_TOKENS = 1_000_000
_INT64 = 2**63

#: A field's check: ``check(value, where)`` raises a 400 naming ``where`` when the value
#: (never None: an explicit null means "unset") is wrong.
Check = Callable[[Any, str], None]
Fields = Mapping[str, Check]


def _fail(message: str, param: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(body: Mapping[str, Any], fields: Fields, where: str = "") -> None:
    """Each field of ``body`` that ``fields`` knows, through its check."""
    for name, value in body.items():
        check = fields.get(name)
        if check is not None and value is not None:
            check(value, f"{where}.{name}" if where else name)


# --- checks of one field, made by kind --------------------------------------------------------


def _typed(kind: Any, label: str) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise _fail(f"{where} must be {label}", where)

    return check


_STRING = _typed(str, "a string")
_OBJECT = _typed(dict, "an object")
_BOOL = _typed(bool, "true or false")


def _number(low: float, high: float) -> Check:
    def check(value: Any, where: str) -> None:
        if not _is_number(value) or not low <= value <= high:
            raise _fail(f"{where} must be between {low:g} and {high:g}", where)

    return check


def _integer(low: int, high: int) -> Check:
    def check(value: Any, where: str) -> None:
        if not _is_int(value):
            raise _fail(f"{where} must be an integer", where)
        if value < low:
            raise _fail(f"{where} must be positive" if low == 1 else
                        f"{where} must be at least {low}", where)
        if value > high:
            raise _fail(f"{where} must be at most {high}", where)

    return check


def _object_of(fields: Fields) -> Check:
    """An object whose own fields are checked by ``fields``."""

    def check(value: Any, where: str) -> None:
        _OBJECT(value, where)
        _check_fields(value, fields, where)

    return check


def _strings(longest: int) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(f"{where} must be an array of strings", where)
        _longest(value, where, longest)

    return check


def _longest(items: list[Any], where: str, longest: int) -> None:
    if len(items) > longest:
        raise _fail(f"{where} may hold at most {longest} items (got {len(items)})", where)


# --- the fields' own checks -------------------------------------------------------------------


def _check_stop(stop: Any, where: str) -> None:
    """A string, or up to 16 (OpenAI takes 4, other providers more)."""
    if isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _fail("stop must be a string or an array of strings", where)
    _longest(stop, where, 16)


def _check_logit_bias(bias: Any, where: str) -> None:
    """Token ids mapped to a bias from -100 to 100 (OpenAI's range)."""
    _OBJECT(bias, where)
    for token, value in bias.items():
        if not _is_number(value) or not -100 <= value <= 100:
            raise _fail(f"{where}[{token[:40]!r}] must be a number from -100 to 100", where)


def _check_metadata(metadata: Any, where: str) -> None:
    """At most 16 pairs of strings, keys of 64 characters and values of 512 at most
    (OpenAI's limits)."""
    _OBJECT(metadata, where)
    if len(metadata) > 16:
        raise _fail(f"{where} may hold at most 16 keys", where)
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise _fail(f"{where} keys must be strings of at most 64 characters and values "
                        "strings of at most 512", where)


_FUNCTION: Fields = {"description": _STRING, "parameters": _OBJECT, "strict": _BOOL}


def _check_function(fn: Any, where: str) -> None:
    """A function definition: a name, and its description, parameters and strict flag."""
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise _fail(f"{where}.name is required", f"{where}.name")
    _check_fields(fn, _FUNCTION, where)


_TOOL: Fields = {"type": _STRING, "cache_control": _OBJECT}


def _check_tools(tools: Any, where: str) -> None:
    """Function tools, 128 at most (OpenAI's limit)."""
    if not isinstance(tools, list):
        raise _fail(f"{where} must be an array", where)
    _longest(tools, where, 128)
    for i, tool in enumerate(tools):
        at = f"{where}[{i}]"
        if not isinstance(tool, dict):
            raise _fail(f"{at} must be an object", at)
        _check_fields(tool, _TOOL, at)
        _check_function(tool.get("function"), f"{at}.function")


def _check_functions(functions: Any, where: str) -> None:
    """The legacy ``functions``: function definitions, as in tools."""
    if not isinstance(functions, list):
        raise _fail(f"{where} must be an array", where)
    _longest(functions, where, 128)
    for i, fn in enumerate(functions):
        _check_function(fn, f"{where}[{i}]")


_JSON_SCHEMA: Fields = {"name": _STRING, "description": _STRING, "strict": _BOOL}


def _check_response_format(fmt: Any, where: str) -> None:
    _OBJECT(fmt, where)
    if not isinstance(fmt.get("type"), str):
        raise _fail(f"{where}.type is required", f"{where}.type")
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise _fail(f"{where}.json_schema must be an object whose schema is an object",
                        f"{where}.json_schema")
        _check_fields(spec, _JSON_SCHEMA, f"{where}.json_schema")


_ALLOWED_TOOL: Fields = {"function": _object_of({"name": _STRING})}


def _check_allowed_tools(allowed: Any, where: str) -> None:
    _OBJECT(allowed, where)
    _check_fields(allowed, {"mode": _STRING}, where)
    tools = allowed.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _fail(f"{where}.tools must be an array", f"{where}.tools")
    for i, tool in enumerate(tools):
        _object_of(_ALLOWED_TOOL)(tool, f"{where}.tools[{i}]")


_TOOL_CHOICE: Fields = {"type": _STRING, "name": _STRING, "allowed_tools": _check_allowed_tools}


def _check_tool_choice(choice: Any, where: str) -> None:
    """``tool_choice`` (or the legacy ``function_call``): a string, or an object naming a
    function (``{type: function, function: {name}}``, legacy ``{name}``) or the allowed
    tools (``{type: allowed_tools, allowed_tools: {mode, tools}}``)."""
    if isinstance(choice, str):
        return
    if not isinstance(choice, dict):
        raise _fail(f"{where} must be a string or an object", where)
    _check_fields(choice, _TOOL_CHOICE, where)
    fn = choice.get("function")
    if (choice.get("type") == "function" or fn is not None) and (
            not isinstance(fn, dict) or not isinstance(fn.get("name"), str)):
        raise _fail(f"{where}.function.name is required", f"{where}.function.name")


# --- messages ---------------------------------------------------------------------------------


def _check_messages(messages: Any) -> None:
    if not messages:
        raise _fail("at least one message is required", "messages")
    if not isinstance(messages, list):
        raise _fail("messages must be an array", "messages")
    for i, message in enumerate(messages):
        _check_message(message, i)


def _check_message(message: Any, i: int) -> None:
    if not isinstance(message, dict):
        raise _fail(f"messages[{i}] must be an object with a role", f"messages[{i}]")
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _fail(f"messages[{i}].role must be one of {', '.join(sorted(ROLES))} (got "
                    f"{role!r:.40})", f"messages[{i}].role")
    if len(message) > 1 + ("content" in message) or role == "tool":  # more than role, content
        _check_message_fields(message, role, f"messages[{i}]")
    content = message.get("content")
    if isinstance(content, str):
        return
    if content is None:
        if role == "assistant":  # an assistant turn may carry only tool_calls (or a refusal)
            return
        raise _fail(f"messages[{i}].content is required for role {role!r}",
                    f"messages[{i}].content")
    if not isinstance(content, list):
        raise _fail(f"messages[{i}].content must be a string or an array of content parts",
                    f"messages[{i}].content")
    for j, part in enumerate(content):
        if isinstance(part, dict) and len(part) == 2 and part.get("type") == "text" \
                and isinstance(part.get("text"), str):
            continue  # the common case: nothing more to check
        _check_part(part, f"messages[{i}].content[{j}]")


def _check_function_call(call: Any, where: str) -> None:
    """A legacy ``function_call`` of an assistant message: a name and JSON arguments."""
    if (not isinstance(call, dict) or not isinstance(call.get("name"), str)
            or not isinstance(call.get("arguments", ""), str)):
        raise _fail(f"{where} must have a string name and arguments (a JSON string)", where)


def _check_tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise _fail(f"{where} must be an array", where)
    for k, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if (not isinstance(fn, dict) or not isinstance(fn.get("name"), str)
                or not isinstance(fn.get("arguments", ""), str)
                or not isinstance(call.get("id", ""), str)
                or not isinstance(call.get("type", ""), str)):
            raise _fail(f"{where}[{k}] must have a string id, function.name and "
                        "function.arguments (a JSON string)", f"{where}[{k}]")


_MESSAGE: Fields = {"name": _STRING, "refusal": _STRING, "tool_call_id": _STRING,
                    "function_call": _check_function_call, "tool_calls": _check_tool_calls}


def _check_message_fields(message: dict[str, Any], role: str, where: str) -> None:
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise _fail(f"{where}.tool_call_id is required for role 'tool'", f"{where}.tool_call_id")
    _check_fields(message, _MESSAGE, where)


_PART: Fields = {
    "text": _STRING,
    "refusal": _STRING,
    "cache_control": _OBJECT,
    "input_audio": _object_of({"data": _STRING, "format": _STRING}),
    "file": _object_of({"file_data": _STRING, "file_id": _STRING, "filename": _STRING}),
    "image_url": _object_of({"url": _STRING, "detail": _STRING}),
}


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
    _check_fields(part, _PART, where)


# --- the operations ---------------------------------------------------------------------------

#: What chat and legacy completions share: sampling, length, stop, stream.
_SAMPLING: Fields = {
    "temperature": _number(0.0, 2.0),
    "top_p": _number(0.0, 1.0),
    "presence_penalty": _number(-2.0, 2.0),
    "frequency_penalty": _number(-2.0, 2.0),
    "n": _integer(1, 128),
    "max_tokens": _integer(1, MAX_TOKENS),
    "seed": _integer(-_INT64, _INT64 - 1),
    "stream": _BOOL,
    "stop": _check_stop,
    "stream_options": _OBJECT,
    "logit_bias": _check_logit_bias,
    "user": _STRING,
}
_CHAT_FIELDS: Fields = {
    **_SAMPLING,
    "max_completion_tokens": _integer(1, MAX_TOKENS),
    "top_logprobs": _integer(0, 20),
    "top_k": _integer(0, _INT64 - 1),
    "logprobs": _BOOL,
    "tools": _check_tools,
    "functions": _check_functions,
    "tool_choice": _check_tool_choice,
    "function_call": _check_tool_choice,
    "parallel_tool_calls": _BOOL,
    "response_format": _check_response_format,
    "modalities": _strings(8),
    "metadata": _check_metadata,
    "reasoning_effort": _STRING,
    "service_tier": _STRING,
    "verbosity": _STRING,
    "store": _BOOL,
    "audio": _OBJECT,
    "prediction": _OBJECT,
    "web_search_options": _OBJECT,
    "safety_identifier": _STRING,
    "prompt_cache_key": _STRING,
}
_COMPLETION_FIELDS: Fields = {
    **_SAMPLING,
    "best_of": _integer(1, 20),
    "logprobs": _integer(0, 5),
    "echo": _BOOL,
    "suffix": _STRING,
}
_EMBEDDING_FIELDS: Fields = {
    "dimensions": _integer(1, 65_536),
    "user": _STRING,
}


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """The body as a JSON object (not nested too deep) with a string ``model``."""
    if not raw:
        raise _fail(f"the request body is empty: send a JSON {what} request")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _fail("the request body must be a JSON object")
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _too_deep(body):
        raise _fail(f"the request body nests arrays and objects more than {MAX_JSON_DEPTH} "
                    "levels deep")
    model = body.get("model")
    if not model:
        raise _fail("model is required", "model")
    if not isinstance(model, str):
        raise _fail("model must be a string", "model")
    if len(model) > MAX_MODEL_LENGTH or not model.isprintable():
        raise _fail(f"model must be at most {MAX_MODEL_LENGTH} printable characters", "model")
    return body


#: orjson writes 254 levels at most: a body wrapped in this many arrays is written only
#: when it nests no deeper than MAX_JSON_DEPTH.
_DEPTH_PADDING = 254 - MAX_JSON_DEPTH


def _too_deep(body: dict[str, Any]) -> bool:
    """Whether ``body`` nests deeper than :data:`MAX_JSON_DEPTH`: asked of orjson, which
    refuses to write more than 254 levels, with the body wrapped to leave exactly that
    many. Linear, at orjson's speed; only bodies with enough brackets get here."""
    padded: Any = body
    for _ in range(_DEPTH_PADDING):
        padded = [padded]
    try:
        orjson.dumps(padded)
    except orjson.JSONEncodeError:
        return True
    return False


def parse_chat_request(raw: bytes) -> ChatRequest:
    body = _json_object(raw, "chat-completions")
    _check_messages(body.get("messages"))
    _check_fields(body, _CHAT_FIELDS)
    return ChatRequest(body)


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
        raise _fail(f"encoding_format must be 'float' or 'base64' (got {fmt!r:.40})",
                    "encoding_format")
    _check_fields(body, _EMBEDDING_FIELDS)
    body.pop("stream", None)  # embeddings never stream
    return EmbeddingsRequest(body)


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
    _check_fields(body, _COMPLETION_FIELDS)
    return CompletionsRequest(body)


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_int(v) for v in value)


def check_limits(request: OperationRequest, limits: LimitsConfig) -> None:
    """The config's limits on a parsed request: at most ``limits.max_messages`` messages
    in a chat request, ``limits.max_inputs`` inputs of an embeddings request or prompts of
    a legacy completions request."""
    if isinstance(request, ChatRequest):
        _check_count(request.messages, "messages", limits.max_messages, "max_messages")
    elif isinstance(request, EmbeddingsRequest):
        _check_count(request.inputs, "input", limits.max_inputs, "max_inputs")
    elif isinstance(request, CompletionsRequest):
        _check_count(request.prompts, "prompt", limits.max_inputs, "max_inputs")


def _check_count(items: list[Any], name: str, limit: int, setting: str) -> None:
    if len(items) > limit:
        raise _fail(f"{name} holds {len(items)} items; this gateway takes at most {limit} "
                    f"(limits.{setting})", name)
