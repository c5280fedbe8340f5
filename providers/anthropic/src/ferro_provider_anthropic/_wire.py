"""Pure translation between OpenAI chat completions and Anthropic's Messages API.

Request: :func:`messages_request`. Response: :func:`chat_completion`. The pieces both
directions and the stream share: :func:`finish_reason`, :func:`openai_usage`,
:func:`refusal_text`, :func:`event_error`. No I/O here.

Field references: https://platform.claude.com/docs/en/api/messages/create
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from ferro import InvalidRequestError, UpstreamError, Usage, wire

log = logging.getLogger("ferro.provider.anthropic")

PROVIDER = "anthropic"

#: The tool that carries a ``response_format`` answer (JSON mode is emulated by forcing it).
JSON_TOOL = "json_response"

#: Image types the Messages API accepts in a base64 ``image`` source.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

#: ``reasoning_effort`` -> ``thinking.budget_tokens`` (1024 is the documented minimum).
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}

#: Anthropic ``stop_reason`` -> OpenAI ``finish_reason`` (``tool_use`` is decided per answer).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "refusal": "stop",  # with message.refusal set: not a content filter on the input
    "max_tokens": "length",
    "model_context_window_exceeded": "length",  # the answer filled the context: truncated
    "pause_turn": "length",  # the turn is incomplete: send it back to continue
}

#: Anthropic error ``type`` -> HTTP status (for errors that arrive inside a stream).
ERROR_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 503,
}


def _unsupported(what: str, hint: str = "") -> InvalidRequestError:
    return wire.unsupported(PROVIDER, what, hint)


# --- request ----------------------------------------------------------------------------


def messages_request(body: dict[str, Any], *, model: str,
                     default_max_tokens: int) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat-completions request (``stream`` included)."""
    check_expressible(body)
    system, messages = convert_messages(body["messages"])
    asked_max = wire.max_tokens(body)
    out: dict[str, Any] = {"model": model, "max_tokens": asked_max or default_max_tokens}
    if system is not None:
        out["system"] = system
    out["messages"] = messages
    json_tool = json_response_tool(body.get("response_format"))
    tools = convert_tools(body.get("tools"), json_tool)
    if tools:
        out["tools"] = tools
        choice = convert_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"),
                                     has_client_tools=len(tools) > (json_tool is not None),
                                     json_mode=json_tool is not None)
        if choice is not None:
            out["tool_choice"] = choice
    stop = wire.stop_sequences(body)
    if stop:
        out["stop_sequences"] = stop
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    thinking = convert_thinking(body, out, explicit_max=asked_max is not None)
    if thinking is not None:
        out["thinking"] = thinking
    if body.get("stream"):
        out["stream"] = True
    return out


def check_expressible(body: Mapping[str, Any]) -> None:
    """Refuse, with a 400 that says why, the fields Claude cannot honour."""
    if (body.get("n") or 1) != 1:
        raise _unsupported("n > 1", "Claude returns one choice per request; send n requests")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise _unsupported("logprobs", "the Messages API does not return token log probabilities")
    if body.get("logit_bias"):
        raise _unsupported("logit_bias")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name):
            raise _unsupported(f"{name} (other than 0)", "Claude has no repetition penalties")
    if body.get("functions") or body.get("function_call"):
        raise _unsupported("the legacy functions/function_call fields",
                           "send tools and tool_choice instead")
    if body.get("audio") or "audio" in (body.get("modalities") or ()):
        raise _unsupported("audio output", "Claude answers with text")
    if body.get("web_search_options") is not None:
        raise _unsupported("web_search_options")
    temperature = body.get("temperature")
    if temperature is not None and temperature > 1:
        raise _unsupported(f"temperature {temperature:g}", "Claude's temperature range is 0 to 1")


def convert_messages(messages: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """(``system``, ``messages``): system and developer messages, wherever they are, become
    the top-level ``system`` in order; tool results become ``tool_result`` blocks in a user
    turn; consecutive turns of one role merge so that turns alternate."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_system_blocks(message.get("content"), i))
            continue
        if role == "user":
            blocks = user_blocks(message.get("content"), i)
        elif role == "assistant":
            blocks = assistant_blocks(message, i)
        elif role == "tool":
            role, blocks = "user", [tool_result_block(message, i)]
        else:
            raise _unsupported(f"messages[{i}] with role {role!r}",
                               "send tool results as role 'tool' messages")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequestError(
            "anthropic needs at least one user or assistant message besides system messages",
            param="messages")
    for turn in turns:
        _finish_turn(turn)
    return _system_value(system), turns


def _finish_turn(turn: dict[str, Any]) -> None:
    blocks = turn["content"]
    if turn["role"] == "user" and len(blocks) > 1 and any(
            b["type"] == "tool_result" for b in blocks):
        # tool results must open the user turn that answers the tool calls
        blocks.sort(key=lambda b: b["type"] != "tool_result")
    if len(blocks) == 1 and blocks[0]["type"] == "text" and "cache_control" not in blocks[0]:
        turn["content"] = blocks[0]["text"]


def _system_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    blocks = []
    for part in wire.content_parts(content):
        if part.get("type") != "text":
            raise _unsupported(f"a {part.get('type')!r} part in system message messages[{i}]",
                               "system prompts are text only")
        if part.get("text"):
            blocks.append(_text_block(part))
    return blocks


def _system_value(blocks: list[dict[str, Any]]) -> Any:
    """A plain string, unless a block carries ``cache_control`` (then the blocks, kept)."""
    if not blocks:
        return None
    if any("cache_control" in b for b in blocks):
        return blocks
    return "\n\n".join(b["text"] for b in blocks)


def _text_block(part: Mapping[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.get("text", "")}
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def user_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    """A user message's content as Messages API content blocks."""
    blocks: list[dict[str, Any]] = []
    for part in wire.content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append(_text_block(part))
        elif kind == "image_url":
            blocks.append(image_block(part))
        elif kind == "file":
            blocks.append(document_block(part))
        elif kind == "input_audio":
            raise _unsupported("input_audio content parts", "Claude takes text, images and PDFs")
        else:
            raise _unsupported(f"content parts of type {kind!r} (messages[{i}])")
    return blocks


def image_block(part: Mapping[str, Any]) -> dict[str, Any]:
    """An ``image_url`` part: a data URL becomes a base64 source, an http(s) URL a url
    source (Anthropic fetches it). ``detail`` has no Anthropic equivalent."""
    image = part.get("image_url")
    url = image if isinstance(image, str) else (image or {}).get("url", "")
    if url.startswith("data:"):
        media_type, data = wire.data_url(url, PROVIDER)
        if media_type not in IMAGE_TYPES:
            raise _unsupported(f"images of type {media_type}",
                               "send image/jpeg, image/png, image/gif or image/webp")
        source: dict[str, Any] = {"type": "base64", "media_type": media_type, "data": data}
    elif url.startswith(("https://", "http://")):
        source = {"type": "url", "url": url}
    else:
        raise InvalidRequestError("image_url.url must be a data: URL or an http(s) URL",
                                  param="messages")
    block: dict[str, Any] = {"type": "image", "source": source}
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def document_block(part: Mapping[str, Any]) -> dict[str, Any]:
    """A ``file`` part holding a PDF (``file_data`` as a data URL) becomes a document."""
    file = part.get("file") or {}
    data = file.get("file_data")
    if not data:
        raise _unsupported("file parts without file_data (file_id)",
                           "send the PDF inline as file_data: data:application/pdf;base64,...")
    if data.startswith("data:"):
        media_type, data = wire.data_url(data, PROVIDER)
    else:
        media_type = "application/pdf" if str(file.get("filename", "")).lower().endswith(
            ".pdf") else "application/octet-stream"
    if media_type != "application/pdf":
        raise _unsupported(f"file parts of type {media_type}", "Claude reads PDF documents")
    block: dict[str, Any] = {"type": "document", "source": {
        "type": "base64", "media_type": media_type, "data": data}}
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def assistant_blocks(message: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    """Thinking blocks sent back (``thinking_blocks``), text, then ``tool_use`` blocks."""
    thinking = message.get("thinking_blocks") or ()
    if not isinstance(thinking, list | tuple):
        raise InvalidRequestError(f"messages[{i}].thinking_blocks must be an array",
                                  param=f"messages[{i}].thinking_blocks")
    blocks: list[dict[str, Any]] = [
        dict(b) for b in thinking
        if isinstance(b, Mapping) and b.get("type") in ("thinking", "redacted_thinking")]
    for part in wire.content_parts(message.get("content")):
        if part.get("type") == "text" and part.get("text"):
            blocks.append(_text_block(part))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        if call.get("type", "function") != "function" or not fn.get("name"):
            raise _unsupported(f"tool call {call.get('id')!r} in messages[{i}]",
                               "only function tool calls translate")
        blocks.append({"type": "tool_use", "id": call.get("id") or "",
                       "name": fn["name"], "input": wire.parse_arguments(fn.get("arguments"))})
    return blocks


def tool_result_block(message: Mapping[str, Any], i: int) -> dict[str, Any]:
    if not message.get("tool_call_id"):
        raise InvalidRequestError(f"messages[{i}] (role 'tool') needs a tool_call_id",
                                  param=f"messages[{i}].tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content:
        block["content"] = user_blocks(content, i)
    return block


def json_response_tool(response_format: Any) -> dict[str, Any] | None:
    """``response_format`` emulated with one tool whose input is the answer: the model is
    forced to call it and the gateway hands its input back as ``message.content``."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"name": JSON_TOOL,
                "description": "Give your final answer as a JSON object.",
                "input_schema": {"type": "object"}}
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") or {"type": "object"}
        if schema.get("type") != "object":
            raise _unsupported("a json_schema whose root is not an object",
                               "tool input is always a JSON object; wrap the value in one")
        description = "Give your final answer as JSON matching this schema."
        if spec.get("description"):
            description += " " + spec["description"]
        return {"name": JSON_TOOL, "description": description, "input_schema": schema}
    raise _unsupported(f"response_format type {kind!r}")


def convert_tools(tools: Any, json_tool: dict[str, Any] | None) -> list[dict[str, Any]]:
    """OpenAI function tools as Anthropic tools (``parameters`` -> ``input_schema``).
    ``strict`` is not sent (see README)."""
    out: list[dict[str, Any]] = []
    for tool in tools or ():
        if tool.get("type", "function") != "function":
            raise _unsupported(f"tools of type {tool.get('type')!r}",
                               "only function tools translate")
        fn = tool.get("function") or {}
        name = fn.get("name")
        if json_tool is not None and name == JSON_TOOL:
            raise _unsupported(f"a tool named {JSON_TOOL!r} together with response_format",
                               "the gateway uses that name to emulate response_format")
        converted: dict[str, Any] = {"name": name}
        if fn.get("description"):
            converted["description"] = fn["description"]
        converted["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
        if tool.get("cache_control"):
            converted["cache_control"] = tool["cache_control"]
        out.append(converted)
    if json_tool is not None:
        out.append(json_tool)
    return out


def convert_tool_choice(choice: Any, parallel: Any, *, has_client_tools: bool,
                        json_mode: bool) -> dict[str, Any] | None:
    """``auto`` -> auto, ``required`` -> any, ``none`` -> none, a named function -> tool;
    ``parallel_tool_calls: false`` -> ``disable_parallel_tool_use``. In JSON mode the model
    must end in a tool call: the answer tool, or one of the client's tools."""
    if isinstance(choice, Mapping):
        if choice.get("type") != "function" or not (choice.get("function") or {}).get("name"):
            raise _unsupported(f"tool_choice {dict(choice)!r}",
                               "use auto, required, none or {type: function, function: {name}}")
        result: dict[str, Any] = {"type": "tool", "name": choice["function"]["name"]}
    elif choice in (None, "auto"):
        result = {"type": "any"} if json_mode else {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    else:
        raise InvalidRequestError(f"tool_choice {choice!r} is not one of auto, required, none",
                                  param="tool_choice")
    if json_mode and (not has_client_tools or result["type"] == "none"):
        result = {"type": "tool", "name": JSON_TOOL}
    if choice is None and not json_mode and parallel is not False:
        return None  # Anthropic's default is auto
    if parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


def convert_thinking(body: Mapping[str, Any], out: dict[str, Any], *,
                     explicit_max: bool) -> dict[str, Any] | None:
    """``reasoning_effort`` as extended thinking with a token budget (or a native
    ``thinking`` object, passed through). The budget counts within ``max_tokens``, as
    reasoning tokens count within OpenAI's ``max_completion_tokens``; without an explicit
    limit, ``max_tokens`` grows by the budget."""
    if body.get("thinking") is not None:
        return body["thinking"]
    effort = body.get("reasoning_effort")
    if effort in (None, "none"):
        return None
    if effort not in EFFORT_BUDGETS:
        raise InvalidRequestError(
            f"reasoning_effort must be one of {', '.join(EFFORT_BUDGETS)} or none",
            param="reasoning_effort")
    budget = EFFORT_BUDGETS[effort]
    if not explicit_max:
        out["max_tokens"] += budget
        return {"type": "enabled", "budget_tokens": budget}
    limit = out["max_tokens"]
    if limit <= 1024:
        raise _unsupported("reasoning_effort with max_tokens of 1024 or less",
                           "Claude's thinking budget is at least 1024 tokens, below max_tokens")
    return {"type": "enabled", "budget_tokens": max(1024, min(budget, limit // 2))}


# --- response ---------------------------------------------------------------------------


def finish_reason(stop_reason: str | None, has_tool_calls: bool) -> str:
    if stop_reason == "tool_use":
        return "tool_calls" if has_tool_calls else "stop"
    reason = FINISH_REASONS.get(stop_reason or "")
    if reason is None:
        log.warning("anthropic: unknown stop_reason %r reported as finish_reason 'stop'",
                    stop_reason)
        return "stop"
    return reason


def refusal_text(stop_details: Any) -> str:
    if isinstance(stop_details, Mapping) and stop_details.get("explanation"):
        return str(stop_details["explanation"])
    return "Claude declined to respond (stop_reason: refusal)."


def openai_usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Anthropic usage in OpenAI's shape. ``input_tokens`` excludes cache reads and writes;
    OpenAI's ``prompt_tokens`` includes them, with reads as ``cached_tokens``."""
    usage = usage or {}
    created = usage.get("cache_creation_input_tokens") or 0
    read = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + created + read
    completion = usage.get("output_tokens") or 0
    out = Usage(prompt_tokens=prompt, completion_tokens=completion,
                total_tokens=prompt + completion, cached_tokens=read,
                cache_creation_tokens=created).to_openai()
    if created:
        out["cache_creation_input_tokens"] = created
    if read:
        out["cache_read_input_tokens"] = read
    return out


def dump_arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def chat_completion(data: Mapping[str, Any], *, model: str, provider: str,
                    json_mode: bool) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` for a Messages API response."""
    texts: list[str] = []
    answer: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            if json_mode and block.get("name") == JSON_TOOL:
                answer.append(dump_arguments(block.get("input")))
            else:
                tool_calls.append({"id": block.get("id"), "type": "function", "function": {
                    "name": block.get("name"), "arguments": dump_arguments(block.get("input"))}})
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            thinking_blocks.append(block)
        elif kind == "redacted_thinking":
            thinking_blocks.append(block)
    content = "".join(answer) if answer else "".join(texts)
    message: dict[str, Any] = {"role": "assistant",
                               "content": content or (None if tool_calls else ""),
                               "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    stop_reason = data.get("stop_reason")
    if stop_reason == "refusal":
        message["refusal"] = refusal_text(data.get("stop_details"))
    return wire.chat_completion(
        response_id=data.get("id") or wire.new_id(),
        model=data.get("model") or model,
        provider=provider,
        message=message,
        finish_reason=finish_reason(stop_reason, bool(tool_calls)),
        usage=openai_usage(data.get("usage")),
    )


def event_error(payload: Any, provider: str) -> UpstreamError:
    """The UpstreamError for an ``error`` event inside a stream."""
    err = payload.get("error") if isinstance(payload, Mapping) else None
    err = err if isinstance(err, Mapping) else {}
    kind = str(err.get("type") or "api_error")
    message = f"{provider}: {err.get('message') or kind} ({kind})"
    if kind == "overloaded_error":
        return UpstreamError(message, status=503, provider=provider,
                             code="upstream_overloaded", retryable=True)
    return UpstreamError(message, status=ERROR_STATUSES.get(kind, 502), provider=provider)
