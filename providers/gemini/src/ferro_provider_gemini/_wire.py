"""An OpenAI chat request translated to a Gemini ``GenerateContentRequest`` (pure functions).

Reference: https://ai.google.dev/api/generate-content and https://ai.google.dev/api/caching
(``Content``, ``Part``, ``Tool``, ``ToolConfig``, ``GenerationConfig``).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from ferro import InvalidRequestError, wire

from ferro_provider_gemini._schema import is_empty_object, to_gemini_schema

__all__ = [
    "SKIP_SIGNATURE",
    "SYNTHETIC_ID_PREFIX",
    "generation_config",
    "to_gemini",
    "to_gemini_contents",
    "tool_config",
    "tools_of",
]

#: Prefix of the tool-call ids this package makes up for Gemini calls that carry none; such
#: ids are not sent back to Gemini (they were never Gemini's).
SYNTHETIC_ID_PREFIX = "call_gemini_"
#: Google's documented placeholder for a function call whose thought signature is unknown
#: (history from another model or client): https://ai.google.dev/gemini-api/docs/thought-signatures
SKIP_SIGNATURE = "skip_thought_signature_validator"

_VERSION = re.compile(r"^(?:models/)?gemini-(\d+)")
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
#: OpenAI reasoning_effort -> Gemini 2.x thinkingBudget, the mapping Google's own
#: OpenAI-compatible endpoint documents (https://ai.google.dev/gemini-api/docs/openai).
_THINKING_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def _major_version(model: str) -> int | None:
    match = _VERSION.match(model)
    return int(match.group(1)) if match else None


def _is_gemma(model: str) -> bool:
    return model.removeprefix("models/").startswith("gemma-")


# --- messages -------------------------------------------------------------------------------


def to_gemini_contents(
    messages: list[dict[str, Any]], *, provider: str, model: str = ""
) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system text, contents)`` for the OpenAI ``messages``.

    System and developer messages are joined, in order, into the system text. Tool results
    become ``functionResponse`` parts of a user turn, named after the assistant tool call
    they answer; consecutive turns of one role are merged into one (Gemini wants
    alternating user and model turns).
    """
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name
    sign = (_major_version(model) or 0) >= 3
    for i, message in enumerate(messages):
        role = message.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(_text_only(message.get("content"), provider, where))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), provider, where))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, names, sign, where))
        elif role == "tool":
            call_id = message.get("tool_call_id") or ""
            name = names.get(call_id)
            if name is None:
                raise InvalidRequestError(
                    f"{where}.tool_call_id {call_id!r} answers no tool call of an earlier "
                    "assistant message; Gemini needs the function name of each tool result",
                    param=f"{where}.tool_call_id")
            part = _function_response(name, message.get("content"), provider, where)
            if not call_id.startswith(SYNTHETIC_ID_PREFIX):
                part["functionResponse"]["id"] = call_id
            _append(contents, "user", [part])
        elif role == "function":  # the legacy form of a tool result
            name = message.get("name")
            if not name:
                raise InvalidRequestError(f"{where}.name is required for role 'function'",
                                          param=f"{where}.name")
            _append(contents, "user",
                    [_function_response(name, message.get("content"), provider, where)])
        else:
            raise InvalidRequestError(f"{where}.role {role!r} is not supported", param=where)
    text = "\n\n".join(t for t in system if t) or None
    return text, contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _text_only(content: Any, provider: str, where: str) -> str:
    for part in wire.content_parts(content):
        if part.get("type") != "text":
            raise wire.unsupported(provider, f"a {part.get('type')!r} part in {where}",
                                   "system, developer and tool messages take text only")
    return wire.text_of(content)


def _user_parts(content: Any, provider: str, where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(wire.content_parts(content)):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            media_type, data = wire.data_url(url, provider)
            parts.append({"inlineData": {"mimeType": media_type, "data": data}})
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            media_type = _AUDIO_TYPES.get(str(audio.get("format", "")).lower())
            if media_type is None or not audio.get("data"):
                raise InvalidRequestError(
                    f"{where}.content[{j}].input_audio needs data and a format (wav or mp3)",
                    param=f"{where}.content[{j}]")
            parts.append({"inlineData": {"mimeType": media_type, "data": audio["data"]}})
        elif kind == "file":
            file = part.get("file") or {}
            if not file.get("file_data"):
                raise wire.unsupported(provider, "a file part without file_data (file_id)",
                                       "send the file inline as a base64 data: URL")
            media_type, data = wire.data_url(file["file_data"], provider)
            parts.append({"inlineData": {"mimeType": media_type, "data": data}})
        else:
            raise wire.unsupported(provider, f"a {kind!r} content part in {where}")
    return parts


def _assistant_parts(message: dict[str, Any], names: dict[str, str],
                     sign: bool, where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = wire.text_of(message.get("content"))
    if text:
        parts.append({"text": text})
    calls = list(message.get("tool_calls") or ())
    legacy = message.get("function_call")
    if legacy:
        calls.append({"type": "function", "function": legacy})
    first = True
    for k, call in enumerate(calls):
        fn = call.get("function") or {}
        name = fn.get("name") or ""
        function_call: dict[str, Any] = {"name": name,
                                         "args": wire.parse_arguments(fn.get("arguments"))}
        call_id = call.get("id")
        if call_id:
            names[call_id] = name
            if not call_id.startswith(SYNTHETIC_ID_PREFIX):
                function_call["id"] = call_id
        part: dict[str, Any] = {"functionCall": function_call}
        signature = _thought_signature(call, f"{where}.tool_calls[{k}]")
        if signature:
            part["thoughtSignature"] = signature
        elif first and sign:
            part["thoughtSignature"] = SKIP_SIGNATURE
        first = False
        parts.append(part)
    return parts


def _thought_signature(call: dict[str, Any], where: str) -> str | None:
    """The ``extra_content.google.thought_signature`` Gemini gave a tool call (sent back
    with it), or None."""
    extra = call.get("extra_content") or {}
    google = (extra.get("google") or {}) if isinstance(extra, dict) else None
    if not isinstance(google, dict) or not isinstance(google.get("thought_signature", ""), str):
        raise InvalidRequestError(f'{where}.extra_content must be {{"google": '
                                  '{"thought_signature": "<a string>"}}',
                                  param=f"{where}.extra_content")
    return google.get("thought_signature")


def _function_response(name: str, content: Any, provider: str, where: str) -> dict[str, Any]:
    text = _text_only(content, provider, where)
    try:
        value = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        value = None
    response = value if isinstance(value, dict) else {"output": text}
    return {"functionResponse": {"name": name, "response": response}}


# --- tools ----------------------------------------------------------------------------------


def tools_of(body: dict[str, Any], *, provider: str,
             schema_mode: str = "openapi") -> list[dict[str, Any]] | None:
    """``tools`` (and the legacy ``functions``) as one Gemini ``functionDeclarations`` tool."""
    tools = list(body.get("tools") or ())
    tools += [{"type": "function", "function": f} for f in body.get("functions") or ()]
    if not tools:
        return None
    declarations = []
    for i, tool in enumerate(tools):
        if tool.get("type", "function") != "function":
            raise wire.unsupported(provider, f"tools[{i}] of type {tool.get('type')!r}",
                                   "only function tools translate to Gemini")
        fn = tool.get("function") or {}
        declaration: dict[str, Any] = {"name": fn.get("name", "")}
        if fn.get("description"):
            declaration["description"] = fn["description"]
        params = fn.get("parameters")
        if schema_mode == "json_schema":
            if params:
                declaration["parametersJsonSchema"] = params
        elif not is_empty_object(params):
            declaration["parameters"] = to_gemini_schema(
                params, provider=provider, path=f"tools[{i}].function.parameters")
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def tool_config(body: dict[str, Any], *, provider: str) -> dict[str, Any] | None:
    """``tool_choice`` (or the legacy ``function_call``) as ``toolConfig``."""
    choice = body.get("tool_choice", body.get("function_call"))
    if choice is None:
        return None
    if isinstance(choice, str):
        modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
        if choice not in modes:
            raise InvalidRequestError(f"tool_choice {choice!r} is not one of auto, none, "
                                      "required", param="tool_choice")
        config: dict[str, Any] = {"mode": modes[choice]}
    elif choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        if allowed.get("mode") != "required":
            raise wire.unsupported(provider, "tool_choice allowed_tools with mode auto",
                                   "Gemini limits the callable functions only in mode "
                                   "required (ANY)")
        names = [(t.get("function") or {}).get("name") for t in allowed.get("tools") or ()]
        config = {"mode": "ANY", "allowedFunctionNames": [n for n in names if n]}
    else:
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if not name:
            raise InvalidRequestError("tool_choice names no function", param="tool_choice")
        config = {"mode": "ANY", "allowedFunctionNames": [name]}
    return {"functionCallingConfig": config}


# --- generation config ----------------------------------------------------------------------

_REFUSED = (
    ("logprobs", lambda v: v is True, "logprobs",
     "Gemini reports log probabilities in its own shape; this gateway does not translate it"),
    ("logit_bias", bool, "logit_bias", ""),
    ("audio", bool, "audio output", ""),
    ("modalities", lambda v: bool(set(v or ()) - {"text"}), "output modalities other than text",
     ""),
    ("web_search_options", lambda v: v is not None, "web_search_options", ""),
)


def generation_config(body: dict[str, Any], *, provider: str, model: str = "",
                      schema_mode: str = "openapi") -> dict[str, Any]:
    """``generationConfig`` for the sampling, length, stop, seed, n, penalties,
    response_format and reasoning_effort fields of the request."""
    for field, present, what, hint in _REFUSED:
        if field in body and present(body[field]):
            raise wire.unsupported(provider, what, hint)
    config: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"),
                         ("seed", "seed"), ("presence_penalty", "presencePenalty"),
                         ("frequency_penalty", "frequencyPenalty")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    limit = wire.max_tokens(body)
    if limit:
        config["maxOutputTokens"] = limit
    stop = wire.stop_sequences(body)
    if stop:
        config["stopSequences"] = stop
    n = body.get("n")
    if n and n > 1:
        config["candidateCount"] = n
    config.update(_response_format(body.get("response_format"), provider, schema_mode))
    thinking = _thinking(body.get("reasoning_effort"), provider, model)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _response_format(fmt: Any, provider: str, schema_mode: str) -> dict[str, Any]:
    if not fmt or fmt.get("type") == "text":
        return {}
    if fmt.get("type") == "json_object":
        return {"responseMimeType": "application/json"}
    if fmt.get("type") != "json_schema":
        raise wire.unsupported(provider, f"response_format {fmt.get('type')!r}")
    out: dict[str, Any] = {"responseMimeType": "application/json"}
    schema = (fmt.get("json_schema") or {}).get("schema")
    if schema:
        if schema_mode == "json_schema":
            out["responseJsonSchema"] = schema
        else:
            out["responseSchema"] = to_gemini_schema(
                schema, provider=provider, path="response_format.json_schema.schema",
                ordered=True)
    return out


def _thinking(effort: Any, provider: str, model: str) -> dict[str, Any] | None:
    if effort is None:
        return None
    if effort not in _THINKING_BUDGET:
        raise InvalidRequestError(f"reasoning_effort {effort!r} is not one of "
                                  f"{', '.join(_THINKING_BUDGET)}", param="reasoning_effort")
    if _is_gemma(model):
        raise wire.unsupported(provider, f"reasoning_effort for {model}",
                               "Gemma models do not think")
    version = _major_version(model)
    if version is not None and version < 3:
        return {"thinkingBudget": _THINKING_BUDGET[effort]}
    # Gemini 3 and later think in levels; "none" is the lowest level there is.
    return {"thinkingLevel": "minimal" if effort == "none" else effort}


# --- the whole request ----------------------------------------------------------------------


def to_gemini(body: dict[str, Any], *, provider: str, model: str,
              schema_mode: str = "openapi",
              safety_settings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``GenerateContentRequest`` body for an OpenAI chat request."""
    system, contents = to_gemini_contents(body["messages"], provider=provider, model=model)
    out: dict[str, Any] = {"contents": contents}
    if system:
        if _is_gemma(model):
            # Gemma takes no system instruction; its prompt format puts it at the start of
            # the first user turn (https://ai.google.dev/gemma/docs/core/prompt-structure).
            _prepend_to_first_user_turn(contents, system)
        else:
            out["systemInstruction"] = {"parts": [{"text": system}]}
    tools = tools_of(body, provider=provider, schema_mode=schema_mode)
    if tools:
        out["tools"] = tools
        config = tool_config(body, provider=provider)
        if config:
            out["toolConfig"] = config
    elif isinstance(body.get("tool_choice"), dict):
        raise InvalidRequestError("tool_choice names a function but the request has no tools",
                                  param="tool_choice")
    generation = generation_config(body, provider=provider, model=model,
                                   schema_mode=schema_mode)
    if generation:
        out["generationConfig"] = generation
    if safety_settings:
        out["safetySettings"] = safety_settings
    return out


def _prepend_to_first_user_turn(contents: list[dict[str, Any]], text: str) -> None:
    for content in contents:
        if content["role"] == "user":
            content["parts"].insert(0, {"text": text})
            return
    contents.insert(0, {"role": "user", "parts": [{"text": text}]})
