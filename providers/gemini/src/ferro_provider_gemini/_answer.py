"""A Gemini ``GenerateContentResponse`` translated to an OpenAI ``chat.completion``, and a
stream of them (``alt=sse``) to ``chat.completion.chunk``s (pure, no I/O).

Reference: https://ai.google.dev/api/generate-content#generatecontentresponse
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from ferro import ChatChunk, UpstreamError, Usage, wire

from ferro_provider_gemini._wire import SYNTHETIC_ID_PREFIX

__all__ = [
    "StreamTranslator",
    "finish_reason",
    "to_chat_completion",
    "tool_call_id",
    "usage_of",
]

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    # Output withheld by a policy: the answer is (partly) filtered.
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "LANGUAGE": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
#: The model produced a function call that cannot be used: no answer to hand over, but
#: another attempt (sampling again, or another target) may well succeed.
_BAD_CALL = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})


def finish_reason(native: str, has_tool_calls: bool, provider: str) -> str:
    """OpenAI's finish_reason for Gemini's ``finishReason``, or an UpstreamError.

    ``STOP`` with function calls is ``tool_calls``. Reasons that say the answer is unusable
    (a malformed function call, ``OTHER``) and reasons this package does not know are
    errors: never a silent ``stop``.
    """
    if native == "STOP" and has_tool_calls:
        return "tool_calls"
    mapped = _FINISH.get(native)
    if mapped is not None:
        return mapped
    if native in _BAD_CALL:
        return _raise(UpstreamError(
            f"{provider}: the model ended with {native}: it produced a function call that "
            "cannot be used", status=502, provider=provider, code="malformed_function_call",
            retryable=True))
    return _raise(UpstreamError(
        f"{provider}: the model stopped for a reason that has no OpenAI equivalent: "
        f"{native or 'none given'}", status=502, provider=provider,
        code="unknown_finish_reason", retryable=True))


def _raise(exc: UpstreamError) -> str:
    raise exc


def usage_of(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI usage for ``usageMetadata``.

    ``prompt_tokens`` = promptTokenCount (which includes cachedContentTokenCount) +
    toolUsePromptTokenCount; ``completion_tokens`` = candidatesTokenCount +
    thoughtsTokenCount (thinking is billed as output, and OpenAI counts reasoning tokens in
    completion_tokens), so ``total_tokens`` matches Gemini's totalTokenCount.
    """
    if not meta:
        return None
    prompt = (meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0)
    thoughts = meta.get("thoughtsTokenCount") or 0
    completion = (meta.get("candidatesTokenCount") or 0) + thoughts
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=meta.get("totalTokenCount") or prompt + completion,
        cached_tokens=meta.get("cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
    ).to_openai()


def tool_call_id(response_id: str, candidate: int, position: int) -> str:
    """A stable id for a function call that came without one: the same for the same answer
    (same response id, candidate and call position), streamed or not, and unique across
    answers so histories never hold two calls with one id."""
    digest = hashlib.sha256(f"{response_id}/{candidate}/{position}".encode()).hexdigest()
    return SYNTHETIC_ID_PREFIX + digest[:20]


def _tool_call(part: dict[str, Any], call: dict[str, Any], call_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": call.get("name", ""),
                     "arguments": orjson.dumps(call.get("args") or {}).decode()},
    }
    if part.get("thoughtSignature"):
        # Where Google's own OpenAI-compatible endpoint carries it; a client that sends the
        # tool call back unchanged returns it, and Gemini 3 requires it on the next turn.
        out["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return out


def _unsupported_part(part: dict[str, Any], provider: str) -> UpstreamError | None:
    for key in ("inlineData", "fileData"):
        if key in part:
            kind = (part[key] or {}).get("mimeType", "data")
            return UpstreamError(
                f"{provider}: the model answered with {kind} ({key}), which an OpenAI chat "
                "completion cannot carry", status=502, provider=provider,
                code="unsupported_upstream_output", retryable=False)
    return None


def _blocked(data: dict[str, Any]) -> str | None:
    return (data.get("promptFeedback") or {}).get("blockReason")


def _refusal(reason: str) -> str:
    return f"The prompt was blocked by Gemini ({reason})."


class _Candidate:
    """What is known of one candidate: its text, tool calls, how it ended."""

    __slots__ = ("calls", "finish", "started", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.finish: str | None = None
        self.started = False


def _read_parts(candidate: dict[str, Any], slot: _Candidate, *, response_id: str, index: int,
                provider: str, single_call: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """The new text and tool calls in a candidate's parts, recorded in ``slot``.

    Thought parts (``thought: true``) are the model's reasoning, not its answer: skipped.
    With ``parallel_tool_calls: false`` only the first function call is kept.
    """
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if part.get("thought"):
            continue
        if "text" in part:
            if part["text"]:
                texts.append(part["text"])
        elif "functionCall" in part:
            if single_call and slot.calls:
                continue
            call = part["functionCall"] or {}
            call_id = call.get("id") or tool_call_id(response_id, index, len(slot.calls))
            tool_call = _tool_call(part, call, call_id)
            slot.calls.append(tool_call)
            calls.append(tool_call)
        else:
            error = _unsupported_part(part, provider)
            if error is not None:
                raise error
    slot.text.extend(texts)
    return texts, calls


def to_chat_completion(data: Any, *, model: str, provider: str, n: int = 1,
                       single_call: bool = False, created: int | None = None) -> dict[str, Any]:
    """The ``chat.completion`` for a (non-streamed) ``GenerateContentResponse``.

    A prompt blocked before any candidate (``promptFeedback.blockReason``) is an answer too:
    ``finish_reason: content_filter``, no content, and the reason in ``message.refusal``.
    """
    if not isinstance(data, dict) or not (data.get("candidates") or _blocked(data)):
        raise UpstreamError(f"{provider} answered without candidates: {str(data)[:200]}",
                            status=502, provider=provider, code="invalid_upstream_response",
                            retryable=True)
    response_id = data.get("responseId") or wire.new_id()
    choices = []
    if not data.get("candidates"):
        message = {"role": "assistant", "content": None, "refusal": _refusal(_blocked(data))}
        choices = [{"index": i, "message": dict(message), "finish_reason": "content_filter",
                    "logprobs": None} for i in range(n)]
    for position, candidate in enumerate(data.get("candidates") or ()):
        index = candidate.get("index", position)
        slot = _Candidate()
        _read_parts(candidate, slot, response_id=response_id, index=index, provider=provider,
                    single_call=single_call)
        if not candidate.get("finishReason"):
            raise UpstreamError(f"{provider} answered a candidate without a finishReason",
                                status=502, provider=provider,
                                code="invalid_upstream_response", retryable=True)
        reason = finish_reason(candidate["finishReason"], bool(slot.calls), provider)
        text = "".join(slot.text)
        message: dict[str, Any] = {"role": "assistant",
                                   "content": text or (None if slot.calls else "")}
        if slot.calls:
            message["tool_calls"] = slot.calls
        choices.append({"index": index, "message": message, "finish_reason": reason,
                        "logprobs": None})
    body = wire.chat_completion(response_id=response_id, model=model, provider=provider,
                                message={}, finish_reason=None,
                                usage=usage_of(data.get("usageMetadata")), created=created)
    body["choices"] = sorted(choices, key=lambda c: c["index"])
    return body


class StreamTranslator:
    """Turns the ``GenerateContentResponse`` chunks of an ``alt=sse`` stream into
    ``chat.completion.chunk``s.

    Each Gemini chunk holds the new parts of each candidate; function calls arrive whole.
    A candidate ends with the chunk that carries its ``finishReason``; :attr:`complete`
    says whether every expected candidate has ended (else the stream was cut short).
    ``usageMetadata`` is cumulative: the last one seen is the usage, emitted once at the
    end by :meth:`usage_chunk`.
    """

    def __init__(self, *, model: str, provider: str, created: int, n: int = 1,
                 single_call: bool = False) -> None:
        self.model = model
        self.provider = provider
        self.created = created
        self.n = n
        self.single_call = single_call
        self.response_id: str | None = None
        self.usage: dict[str, Any] | None = None
        self.candidates: dict[int, _Candidate] = {}

    @property
    def complete(self) -> bool:
        ended = sum(1 for c in self.candidates.values() if c.finish)
        return ended >= self.n

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        return ChatChunk({
            "id": self.response_id, "object": "chat.completion.chunk",
            "created": self.created, "model": self.model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        })

    def feed(self, data: dict[str, Any]) -> list[ChatChunk]:
        """The OpenAI chunks for one Gemini chunk."""
        if self.response_id is None:
            self.response_id = data.get("responseId") or wire.new_id()
        if data.get("usageMetadata"):
            self.usage = data["usageMetadata"]
        out: list[ChatChunk] = []
        candidates = data.get("candidates") or ()
        if not candidates and _blocked(data):
            for index in range(self.n):
                slot = self.candidates.setdefault(index, _Candidate())
                if not slot.finish:
                    slot.finish = "content_filter"
                    out.append(self._chunk(index, {"role": "assistant", "content": None,
                                                   "refusal": _refusal(_blocked(data))}))
                    out.append(self._chunk(index, {}, "content_filter"))
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position)
            slot = self.candidates.setdefault(index, _Candidate())
            if slot.finish:
                continue
            out.extend(self._deltas(candidate, slot, index))
            if candidate.get("finishReason"):
                slot.finish = finish_reason(candidate["finishReason"], bool(slot.calls),
                                            self.provider)
                out.append(self._chunk(index, {}, slot.finish))
        return out

    def _deltas(self, candidate: dict[str, Any], slot: _Candidate,
                index: int) -> list[ChatChunk]:
        first = len(slot.calls)
        texts, calls = _read_parts(candidate, slot, response_id=self.response_id or "",
                                   index=index, provider=self.provider,
                                   single_call=self.single_call)
        out: list[ChatChunk] = []
        role: dict[str, Any] = {}
        if not slot.started:
            slot.started = True
            role = {"role": "assistant"}
        if texts or (role and not calls):
            out.append(self._chunk(index, {**role, "content": "".join(texts)}))
            role = {}
        for k, call in enumerate(calls, start=first):
            # id and name first, then the arguments (Gemini sends them whole).
            head = {"index": k, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}
            if "extra_content" in call:
                head["extra_content"] = call["extra_content"]
            out.append(self._chunk(index, {**role, "tool_calls": [head]}))
            role = {}
            args = {"index": k, "function": {"arguments": call["function"]["arguments"]}}
            out.append(self._chunk(index, {"tool_calls": [args]}))
        return out

    def usage_chunk(self) -> ChatChunk | None:
        usage = usage_of(self.usage)
        if usage is None:
            return None
        return ChatChunk({"id": self.response_id or wire.new_id(),
                          "object": "chat.completion.chunk", "created": self.created,
                          "model": self.model, "choices": [], "usage": usage})
