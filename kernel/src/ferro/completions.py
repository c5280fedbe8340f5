"""Legacy completions (``POST /v1/completions``) served through a provider's chat API, for
upstreams that have no completions endpoint of their own.

Each prompt becomes one user message; a list of prompts gets one chat call each, and the
answers come back as the choices of one ``text_completion`` (prompt ``i``'s choice ``j`` at
index ``i * n + j``, as OpenAI numbers them). What chat cannot express is a 400 that names
the field: ``echo``, ``suffix``, ``logprobs``, ``best_of`` above 1, token-array prompts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from ferro import wire
from ferro.operations import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionsRequest,
    CompletionsResponse,
    RawFrames,
    Usage,
)

__all__ = ["chat_requests_for", "completions_via_chat", "stream_completions_via_chat"]

#: OpenAI's documented default for a legacy completion's ``max_tokens``.
DEFAULT_MAX_TOKENS = 16

#: Fields that mean the same in a chat request, copied as they are.
_SHARED = ("model", "max_tokens", "temperature", "top_p", "n", "stop", "presence_penalty",
           "frequency_penalty", "seed", "user", "logit_bias", "stream", "stream_options")


class ChatProvider(Protocol):
    name: str

    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk | RawFrames]: ...


def chat_requests_for(request: CompletionsRequest, provider: str) -> list[ChatRequest]:
    """One chat request per prompt; a 400 naming the first field chat cannot express."""
    body = request.body
    if body.get("echo"):
        raise wire.unsupported(provider, "echo", "its chat API cannot repeat the prompt")
    if body.get("suffix"):
        raise wire.unsupported(provider, "suffix", "its chat API has no insertion mode")
    if body.get("logprobs") is not None:
        raise wire.unsupported(provider, "logprobs",
                               "its chat API is used for completions; omit logprobs")
    best_of = body.get("best_of")
    if best_of is not None and best_of != 1:
        raise wire.unsupported(provider, f"best_of={best_of}", "omit best_of or send 1")
    prompts = request.prompts
    if any(not isinstance(p, str) for p in prompts):
        raise wire.unsupported(provider, "token arrays in prompt", "send the prompt as text")
    shared = {k: body[k] for k in _SHARED if k in body}
    shared.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    return [ChatRequest({**shared, "messages": [{"role": "user", "content": p}]})
            for p in prompts]


def _completion_choice(choice: dict[str, Any], index: int) -> dict[str, Any]:
    message = choice.get("message") or {}
    return {"text": message.get("content") or "", "index": index, "logprobs": None,
            "finish_reason": choice.get("finish_reason")}


async def completions_via_chat(provider: ChatProvider,
                               request: CompletionsRequest) -> CompletionsResponse:
    chats = chat_requests_for(request, provider.name)
    answers = await asyncio.gather(*(provider.chat(c) for c in chats))
    n = request.body.get("n") or 1
    choices: list[dict[str, Any]] = []
    usage = Usage()
    for i, answer in enumerate(answers):
        for choice in answer.body.get("choices") or ():
            choices.append(_completion_choice(choice, i * n + (choice.get("index") or 0)))
        usage.add(answer.usage)
    first = answers[0].body
    return CompletionsResponse({
        "id": "cmpl-" + str(first.get("id") or wire.new_id("")).removeprefix("chatcmpl-"),
        "object": "text_completion",
        "created": first.get("created") or int(time.time()),
        "model": first.get("model") or request.model,
        "provider": provider.name,
        "choices": choices,
        "usage": usage.to_openai(),
    })


async def stream_completions_via_chat(
        provider: ChatProvider, request: CompletionsRequest) -> AsyncIterator[ChatChunk]:
    """The chat streams of each prompt, one after the other, as ``text_completion``
    chunks; usage (summed) in a last ``choices: []`` chunk, as OpenAI sends it."""
    chats = chat_requests_for(request, provider.name)
    n = request.body.get("n") or 1
    response_id, created = wire.new_id("cmpl-"), int(time.time())
    usage: Usage | None = None
    for i, chat in enumerate(chats):
        chat.body["stream_options"] = {"include_usage": True}
        async for item in provider.stream(chat):
            for chunk in item.chunks() if isinstance(item, RawFrames) else (item,):
                data = chunk.as_dict()
                if data.get("usage"):
                    usage = usage or Usage()
                    usage.add(Usage.from_openai(data["usage"]))
                choices = [{"text": (c.get("delta") or {}).get("content") or "",
                            "index": i * n + (c.get("index") or 0), "logprobs": None,
                            "finish_reason": c.get("finish_reason")}
                           for c in data.get("choices") or ()]
                # a chat stream's opening role chunk has nothing for a completion to say
                choices = [c for c in choices if c["text"] or c["finish_reason"]]
                if choices:
                    yield ChatChunk({"id": response_id, "object": "text_completion",
                                     "created": created, "model": data.get("model") or
                                     request.model, "choices": choices})
    if usage is not None:
        yield ChatChunk({"id": response_id, "object": "text_completion", "created": created,
                         "model": request.model, "choices": [], "usage": usage.to_openai()})
