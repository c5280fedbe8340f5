"""Pure translation between OpenAI chat completions and Cohere's Chat API v2 (no I/O).

Requests: :func:`build_request`. Non-streamed answers: :func:`completion`. What both
directions share with the stream (``_stream.py``): :func:`finish_reason`, :func:`usage`,
:func:`logprob_entry`, :func:`generation_failed`.

Reference: https://docs.cohere.com/reference/chat (request and response schema).
"""

from __future__ import annotations

from typing import Any

import orjson
from ferro import InvalidRequestError, UpstreamError, Usage, wire

#: Cohere ``finish_reason`` -> OpenAI ``finish_reason``.
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
#: Cohere reasons that mean the generation failed: an error, never a fake success.
FAILED = frozenset({"ERROR", "TIMEOUT"})

#: Cohere documents ``p`` in [0.01, 0.99]; OpenAI's ``top_p`` is [0, 1].
P_MIN, P_MAX = 0.01, 0.99

_EMPTY_PARAMETERS = {"type": "object", "properties": {}}


# --- request ------------------------------------------------------------------------------


def build_request(body: dict[str, Any], model: str, provider: str, *, stream: bool,
                  safety_mode: str | None = None) -> dict[str, Any]:
    """The ``POST /v2/chat`` body for an OpenAI chat-completions ``body``.

    Raises a 400 (:func:`ferro.wire.unsupported`) for a field Cohere cannot express.
    """
    refuse_unsupported(body, provider)
    out: dict[str, Any] = {"model": model, "messages": messages(body["messages"], provider),
                           "stream": stream}
    tools, choice = tool_setup(body.get("tools"), body.get("tool_choice"), provider)
    if tools:
        out["tools"] = tools
        if any(t.get("function", {}).get("strict") for t in body["tools"]):
            out["strict_tools"] = True
    if choice:
        out["tool_choice"] = choice
    fmt = response_format(body.get("response_format"))
    if fmt:
        out["response_format"] = fmt
    _sampling(body, out)
    thinking = thinking_for(body.get("reasoning_effort"))
    if thinking:
        out["thinking"] = thinking
    if safety_mode:
        out["safety_mode"] = safety_mode
    return out


def refuse_unsupported(body: dict[str, Any], provider: str) -> None:
    """A 400 for each OpenAI field that would change the answer and Cohere cannot express."""
    n = body.get("n")
    if n is not None and n != 1:
        raise wire.unsupported(provider, "n > 1 (several choices in one request)",
                               "send one request per choice")
    if body.get("functions") or body.get("function_call"):
        raise wire.unsupported(provider, "the legacy functions / function_call fields",
                               "use tools and tool_choice")
    if body.get("logit_bias"):
        raise wire.unsupported(provider, "logit_bias")
    if body.get("top_logprobs"):
        raise wire.unsupported(provider, "top_logprobs (alternative tokens)",
                               "send logprobs: true alone for the chosen tokens' log "
                               "probabilities")
    modalities = body.get("modalities")
    if body.get("audio") or (modalities and set(modalities) - {"text"}):
        raise wire.unsupported(provider, "audio output", "ask for text only")
    if body.get("web_search_options") is not None:
        raise wire.unsupported(provider, "web_search_options")
    if body.get("verbosity") is not None:
        raise wire.unsupported(provider, "verbosity")


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    max_tokens = wire.max_tokens(body)
    if max_tokens:
        out["max_tokens"] = max_tokens
    stop = wire.stop_sequences(body)
    if stop:
        out["stop_sequences"] = stop
    for name in ("temperature", "seed", "frequency_penalty", "presence_penalty"):
        if body.get(name) is not None:
            out[name] = body[name]
    top_p = body.get("top_p")
    if top_p is not None:
        out["p"] = min(max(top_p, P_MIN), P_MAX)
    if body.get("top_k") is not None:  # not OpenAI's, but sent by many OpenAI-style clients
        out["k"] = body["top_k"]
    if body.get("logprobs"):
        out["logprobs"] = True


def messages(msgs: list[dict[str, Any]], provider: str) -> list[dict[str, Any]]:
    """OpenAI messages as Cohere v2 messages.

    System and developer messages become one leading ``system`` message (their texts joined
    by blank lines, in order): Cohere wants the system turn first in the list.
    """
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(msgs):
        role = msg.get("role")
        if role in ("system", "developer"):
            text = wire.text_of(msg.get("content"))
            if text:
                system.append(text)
        elif role == "user":
            out.append({"role": "user", "content": user_content(msg.get("content"), provider)})
        elif role == "assistant":
            out.append(assistant_message(msg, i))
        elif role == "tool":
            out.append({"role": "tool", "tool_call_id": msg["tool_call_id"],
                        "content": tool_content(msg.get("content"), provider)})
        else:
            raise wire.unsupported(provider, f"messages with role {role!r}",
                                   "use tool_calls and role 'tool' messages")
    if system:
        out.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return out


def user_content(content: Any, provider: str) -> Any:
    """A user message's content: a string stays a string; parts become Cohere content blocks
    (``text`` and ``image_url``, which takes data URLs and web URLs alike)."""
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for part in wire.content_parts(content):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append({"type": "image_url", "image_url": _image_url(part.get("image_url"))})
        else:
            raise wire.unsupported(provider, f"{kind} content parts",
                                   "Cohere's chat takes text and image_url parts")
    return blocks


def _image_url(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise InvalidRequestError("image_url parts need image_url.url", param="messages")
    image = {"url": value["url"]}
    if value.get("detail"):
        image["detail"] = value["detail"]
    return image


def assistant_message(msg: dict[str, Any], i: int) -> dict[str, Any]:
    """An assistant turn. With tool calls, its text is Cohere's ``tool_plan`` (the text the
    model wrote before calling tools), so a Cohere answer survives the round trip."""
    text = wire.text_of(msg.get("content")) or msg.get("refusal") or ""
    calls = msg.get("tool_calls")
    if not calls:
        return {"role": "assistant", "content": text}
    out: dict[str, Any] = {"role": "assistant",
                           "tool_calls": [_tool_call(c, i, j) for j, c in enumerate(calls)]}
    if text:
        out["tool_plan"] = text
    return out


def _tool_call(call: dict[str, Any], i: int, j: int) -> dict[str, Any]:
    fn = call.get("function") or {}
    if not call.get("id") or not fn.get("name"):
        raise InvalidRequestError(f"messages[{i}].tool_calls[{j}] needs an id and a "
                                  "function name", param=f"messages[{i}].tool_calls")
    args = fn.get("arguments")
    if isinstance(args, dict):
        args = orjson.dumps(args).decode()
    return {"id": call["id"], "type": "function",
            "function": {"name": fn["name"], "arguments": args or "{}"}}


def tool_content(content: Any, provider: str) -> Any:
    """A tool result: a string stays a string, text parts become text blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    blocks = []
    for part in content:
        if part.get("type") != "text":
            raise wire.unsupported(provider, f"{part.get('type')} parts in tool results",
                                   "send tool results as text")
        blocks.append({"type": "text", "text": part.get("text", "")})
    return blocks


def tool_setup(tools: list[dict[str, Any]] | None, choice: Any,
               provider: str) -> tuple[list[dict[str, Any]], str | None]:
    """Cohere ``tools`` and ``tool_choice``.

    Cohere's tool_choice is only ``REQUIRED`` or ``NONE``. A named function (or OpenAI's
    ``allowed_tools``) is translated: only those tools are offered, and a call is required
    (``allowed_tools`` mode ``auto``: offered, not required).
    """
    converted = [_tool(t, provider) for t in tools or ()]
    if choice is None or choice == "auto":
        return converted, None
    if choice == "none":
        return converted, "NONE"
    if choice == "required":
        return converted, "REQUIRED"
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        return _only(converted, [name]), "REQUIRED"
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = [(t.get("function") or {}).get("name") for t in allowed.get("tools") or ()]
        return _only(converted, names), "REQUIRED" if allowed.get("mode") == "required" else None
    raise InvalidRequestError(f"tool_choice {choice!r} is not valid: use 'auto', 'none', "
                              "'required' or a function", param="tool_choice")


def _tool(tool: dict[str, Any], provider: str) -> dict[str, Any]:
    if tool.get("type", "function") != "function":
        raise wire.unsupported(provider, f"tools of type {tool.get('type')!r}",
                               "Cohere takes function tools")
    fn = tool["function"]
    out: dict[str, Any] = {"name": fn["name"],
                           "parameters": fn.get("parameters") or _EMPTY_PARAMETERS}
    if fn.get("description"):
        out["description"] = fn["description"]
    return {"type": "function", "function": out}


def _only(tools: list[dict[str, Any]], names: list[Any]) -> list[dict[str, Any]]:
    kept = [t for t in tools if t["function"]["name"] in names]
    if len(kept) != len(set(names)) or not kept:
        raise InvalidRequestError(f"tool_choice names {names!r}, which tools does not define",
                                  param="tool_choice")
    return kept


def response_format(fmt: Any) -> dict[str, Any] | None:
    """``json_object`` as is; ``json_schema`` as ``json_object`` with Cohere's ``json_schema``."""
    if not fmt or fmt.get("type") == "text":
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "json_schema": schema} if schema else {
            "type": "json_object"}
    raise InvalidRequestError(f"response_format type {kind!r} is not valid: use text, "
                              "json_object or json_schema", param="response_format")


def thinking_for(effort: Any) -> dict[str, Any] | None:
    """``reasoning_effort: none`` turns Cohere's reasoning off; other levels leave Cohere's
    default (reasoning on, for the models that reason): Cohere sets a token budget, not a
    level."""
    return {"type": "disabled"} if effort == "none" else None


# --- response -----------------------------------------------------------------------------


def completion(data: Any, model: str, provider: str, *,
               max_tool_calls: int | None = None) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` for a Cohere v2 chat response."""
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise UpstreamError(f"{provider} answered without a message: {str(data)[:200]}",
                            status=502, provider=provider, code="invalid_upstream_response",
                            retryable=True)
    reason = data.get("finish_reason")
    if reason in FAILED:
        raise generation_failed(provider, reason, data.get("error"))
    msg = data["message"]
    text, thinking = _content(msg.get("content"))
    response_id = str(data.get("id") or wire.new_id())
    calls = [_openai_call(c, response_id, j) for j, c in enumerate(msg.get("tool_calls") or ())]
    if max_tool_calls is not None:
        calls = calls[:max_tool_calls]
    content = (msg.get("tool_plan") or "") + text
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = thinking
    raw_usage = data.get("usage")
    body = wire.chat_completion(
        response_id=response_id, model=model, provider=provider, message=message,
        finish_reason=finish_reason(reason, bool(calls)),
        usage=usage(raw_usage).to_openai() if raw_usage else None)
    if data.get("logprobs"):
        body["choices"][0]["logprobs"] = {
            "content": [logprob_entry(item) for item in data["logprobs"]], "refusal": None}
    return body


def _content(content: Any) -> tuple[str, str]:
    if isinstance(content, str):
        return content, ""
    text, thinking = [], []
    for block in content or ():
        if block.get("type") == "text":
            text.append(block.get("text") or "")
        elif block.get("type") == "thinking":
            thinking.append(block.get("thinking") or "")
    return "".join(text), "".join(thinking)


def _openai_call(call: dict[str, Any], response_id: str, j: int) -> dict[str, Any]:
    fn = call.get("function") or {}
    args = fn.get("arguments")
    if isinstance(args, dict):
        args = orjson.dumps(args).decode()
    return {"id": call.get("id") or f"call_{response_id}_{j}", "type": "function",
            "function": {"name": fn.get("name") or "", "arguments": args or "{}"}}


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    """Cohere's reason in OpenAI's words. A reason Cohere adds later is passed through in
    lower case (never disguised as ``stop``); a missing one is inferred from the answer."""
    mapped = FINISH_REASONS.get(reason)  # type: ignore[arg-type]
    if mapped:
        return mapped
    if not reason:
        return "tool_calls" if has_tool_calls else "stop"
    return str(reason).lower()


def usage(raw: dict[str, Any]) -> Usage:
    """Cohere usage as :class:`ferro.Usage`: ``tokens`` (what the model processed), else
    ``billed_units``; ``cached_tokens`` (a part of the input) as cached tokens."""
    tokens = raw.get("tokens") or {}
    billed = raw.get("billed_units") or {}
    prompt = tokens.get("input_tokens")
    if prompt is None:
        prompt = billed.get("input_tokens")
    done = tokens.get("output_tokens")
    if done is None:
        done = billed.get("output_tokens")
    prompt, done = int(prompt or 0), int(done or 0)
    return Usage(prompt, done, prompt + done, cached_tokens=int(raw.get("cached_tokens") or 0))


def logprob_entry(item: dict[str, Any]) -> dict[str, Any]:
    """One Cohere logprob item (a text chunk and its tokens' log probabilities) as one OpenAI
    logprob entry: the chunk's text and its log probability (the sum over its tokens)."""
    text = item.get("text") or ""
    return {"token": text, "logprob": sum(item.get("logprobs") or ()),
            "bytes": list(text.encode()), "top_logprobs": []}


def generation_failed(provider: str, reason: Any, error: Any) -> UpstreamError:
    """Cohere ended the answer with ``ERROR`` or ``TIMEOUT`` (or an error message)."""
    detail = f": {error}" if error else ""
    return UpstreamError(
        f"{provider}: the generation failed (finish_reason {reason}){detail}", status=502,
        provider=provider, retryable=True,
        code="upstream_timeout" if reason == "TIMEOUT" else "upstream_error")
